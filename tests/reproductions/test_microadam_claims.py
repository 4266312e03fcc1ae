"""The claims of the ``microadam`` reproduction: held / not held / unmeasurable from hand-written numbers
(no training), the pure verdict functions, and the BERT-Base memory figure."""

from __future__ import annotations

import math

import pytest

from commpress.reproductions import microadam as rep
from tests.reproductions._fake import data_results, held, measured


def run(final_loss: float, accuracy: float, step: float = 1e-3) -> dict:
    return {"curve": [2.3, final_loss], "final_loss": final_loss, "accuracy": accuracy, "step_seconds": step,
            "steps": 100}


def micro_run(final_loss: float, accuracy: float, state: int = 9329, formula: int = 9329, tensors: int = 9329) -> dict:
    out = run(final_loss, accuracy, 1e-2)
    out["memory"] = {"state_bytes": state, "formula_bytes": formula, "held_by_tensors": tensors, "adam_bytes": 76880,
                     "numel": 9610}
    return out


BERT = {"numel": 109_482_240, "microadam_bytes": 98_578_000, "adam_bytes": 8 * 109_482_240,
        "bytes_per_param": 98_578_000 / 109_482_240, "quant_block": 100_000}


def results(adam: list[tuple[float, float]], micro: list[dict], bert=BERT):
    data = {"seeds": list(range(len(adam))), "n_train": 1437, "n_test": 360,
            "runs": {"Adam": {str(i): run(*a) for i, a in enumerate(adam)},
                     "MicroAdam": {str(i): m for i, m in enumerate(micro)}},
            "bert_base": bert}
    return data_results("microadam", data)


def test_all_measurable_claims_hold():
    res = results([(0.010, 0.98), (0.011, 0.97), (0.012, 0.975)],
                  [micro_run(0.0104, 0.975), micro_run(0.0112, 0.972), micro_run(0.02, 0.97)])
    claims = rep.check(res)
    assert held(claims) == [True, True, True, False]
    assert measured(claims) == [True, True, True, False]  # running time: the CUDA kernels are not measured here
    assert "CUDA" in claims[3].unmeasurable


def test_claims_fail_on_bad_numbers():
    # loss 20% above Adam's, accuracy 2 points below, the held state off the formula by one byte
    res = results([(0.010, 0.98), (0.010, 0.98)], [micro_run(0.012, 0.96, state=9330, tensors=9330)] * 2)
    claims = rep.check(res)
    assert held(claims) == [False, False, False, False]
    assert measured(claims) == [True, True, True, False]
    assert claims[0].note and claims[1].note and "formula" in claims[2].note
    # BERT-Base far from 0.9 bytes per parameter
    far = dict(BERT, bytes_per_param=1.2)
    assert not rep.check(results([(0.01, 0.98)], [micro_run(0.01, 0.98)], bert=far))[2].held


def test_unmeasurable_numbers_are_not_held():
    claims = rep.check(results([(0.0, 0.98)], [micro_run(math.inf, math.nan)], bert={}))
    assert held(claims) == [False, False, False, False]
    assert measured(claims) == [False, False, False, False]
    claims = rep.check(data_results("microadam", {}))  # nothing ran
    assert held(claims) == [False, False, False, False] and not any(measured(claims))


@pytest.mark.parametrize("micro,adam,rel,out", [(1.04, 1.0, 0.05, True), (1.06, 1.0, 0.05, False),
                                                (0.5, 1.0, 0.05, True), (1.0, 0.0, 0.05, None),
                                                (math.nan, 1.0, 0.05, None)])
def test_loss_within(micro, adam, rel, out):
    assert rep.loss_within(micro, adam, rel)[0] is out


def test_accuracy_within_and_memory_near():
    assert rep.accuracy_within(0.975, 0.98, 1.0) == (True, pytest.approx(-0.5))
    assert rep.accuracy_within(0.965, 0.98, 1.0)[0] is False
    assert rep.accuracy_within(math.nan, 0.98, 1.0)[0] is None
    assert rep.memory_near(0.9004, 0.9, 0.05) and not rep.memory_near(0.96, 0.9, 0.05)
    assert not rep.memory_near(math.nan, 0.9, 0.05) and not rep.memory_near(8.5, 8.4, 1.0)


def test_bert_base_memory_is_the_papers_figure():
    sizes = rep.bert_base_sizes()
    assert sum(sizes) == 109_482_240 and len(sizes) == 199
    mem = rep.bert_memory({"m": 10, "density": 0.01, "topk_block": 16384, "bert_quant_block": 100_000})
    assert mem["numel"] == sum(sizes) and mem["adam_bytes"] == 8 * sum(sizes)
    assert abs(mem["bytes_per_param"] - 0.9) < 0.005  # 0.4 d (window) + 0.5 d (4-bit error) + rounding up of k
    small_q = rep.bert_memory({"m": 10, "density": 0.01, "topk_block": 16384, "bert_quant_block": 64})
    assert small_q["bytes_per_param"] > 0.95  # 4/64 bytes of bounds per entry on top


def test_compute_check_figure_and_report_on_a_tiny_run(tmp_path):
    """The real pipeline at a tiny size (1 epoch, 1 seed, 16 hidden units): numbers of both optimizers, four
    verdicts, the figure and the per-seed table."""
    res = data_results("microadam", {}, params={"epochs": 1, "seeds": [0], "hidden": 16})
    rep.compute(res)
    runs = res.data["runs"]
    assert set(runs) == {"Adam", "MicroAdam"} and set(runs["MicroAdam"]) == {"0"}
    mem = runs["MicroAdam"]["0"]["memory"]
    assert mem["state_bytes"] == mem["formula_bytes"] == mem["held_by_tensors"] > 0
    assert mem["numel"] == 64 * 16 + 16 + 16 * 10 + 10 and mem["adam_bytes"] == 8 * mem["numel"]
    assert runs["Adam"]["0"]["curve"][0] == runs["MicroAdam"]["0"]["curve"][0]  # same initialisation
    claims = rep.check(res)
    assert len(claims) == 4 and measured(claims) == [True, True, True, False] and claims[2].held
    assert rep.figure(res, tmp_path / "figure.png").exists()
    assert "| MicroAdam | 0 |" in rep.report_extra(res)
