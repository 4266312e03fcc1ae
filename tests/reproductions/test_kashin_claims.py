"""The claims of the ``kashin`` reproduction on fabricated data: each held, not held and unmeasurable;
and the quick reproduction end to end (a few seconds)."""

from __future__ import annotations

import copy
import json

import pytest

from commpress.reproductions import kashin
from tests.reproductions._fake import data_results, held, measured

GOOD = {
    "dims": [64, 256, 1024],
    "up": [{"compressor": "qsgd", "d": 64, "kind": "unbiased", "epsilon": 0.9, "bits": 160, "product": 7.2},
           {"compressor": "drive", "d": 64, "kind": "unbiased", "epsilon": 0.36, "bits": 96, "product": 4.1},
           {"compressor": "iscc", "d": 64, "skipped": "kind combinatorial: no class constant"}],
    "kashin": {d: {"lam": 2.0, "levels": [3.0, 3.2], "omega": [3.0, 3.5], "bits_per_coordinate": 2.03,
                   "bound": [4.0, 4.6]} for d in ("64", "256", "1024")},
    "dithering": {"64": {"omega": [5.0], "bits_per_coordinate": 2.5}, "256": {"omega": [8.0], "bits_per_coordinate": 2.1},
                  "1024": {"omega": [15.0], "bits_per_coordinate": 2.03}},
    "spherical": {"8": {"mean_error": 0.247, "stderr": 0.005, "bound": 0.25},
                  "12": {"mean_error": 0.114, "stderr": 0.003, "bound": 0.125}},
    "topk": {"d": 1000, "k": 100, "trials": 60, "topk_error": 0.561, "topk_sd": 0.01, "random_error": 0.9,
             "random_sd": 0.01},
}


def _claims(data):
    return kashin.check(data_results("kashin", data))


def test_all_held_on_good_numbers():
    claims = _claims(GOOD)
    assert len(claims) == 5 and held(claims) == [True] * 5 and measured(claims) == [True] * 5


def _bad(path, value):
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize("index,path,value", [
    (0, ("up", 0, "product"), 0.5),                        # a declared constant below the limit
    (1, ("kashin", "1024", "levels"), [3.0, 5.5]),          # level above 5
    (1, ("kashin", "256", "omega"), [3.0, 4.9]),            # omega above (K^2 - 1)/lambda
    (2, ("kashin", "64", "omega"), [1.0]),                  # Kashin's omega drifts with d (3.5 / 1 > 3)
    (2, ("dithering", "1024", "omega"), [6.0]),             # dithering does not grow like sqrt(d)
    (3, ("spherical", "12", "mean_error"), 0.3),            # 2.4 x the bound
    (4, ("topk", "topk_error"), 0.62),                      # off the Gaussian tail value
])
def test_each_claim_can_fail(index, path, value):
    claims = _claims(_bad(path, value))
    assert not claims[index].held and measured(claims)[index]
    assert all(c.held for i, c in enumerate(claims) if i != index)


@pytest.mark.parametrize("index,key,value", [
    (0, "up", [{"compressor": "iscc", "d": 64, "skipped": "no constant"}]),
    (1, "kashin", {}),
    (2, "dims", [64]),
    (3, "spherical", {}),
    (4, "topk", {}),
])
def test_each_claim_is_unmeasurable_without_numbers(index, key, value):
    data = copy.deepcopy(GOOD)
    data[key] = value
    claims = _claims(data)
    assert not claims[index].held and claims[index].unmeasurable


def test_nan_numbers_are_unmeasurable_not_held():
    claims = _claims(_bad(("kashin", "256", "omega"), [float("nan")]))
    assert not claims[1].held and claims[1].unmeasurable and not claims[2].held and claims[2].unmeasurable


def test_compute_check_and_figure_on_a_small_configuration(tmp_path):
    """What ``commpress reproduce kashin --quick`` runs (compute, check, figure), on a smaller configuration."""
    small = {"dims": [64, 256], "vectors": 2, "repetitions": 6, "seeds": [0, 1], "spherical_bits": [8],
             "spherical_trials": 40, "topk_trials": 20}
    res = data_results("kashin", {}, params=small)
    kashin.compute(res)
    assert set(res.data) >= {"kashin", "dithering", "spherical", "topk", "up", "seeds"}
    assert len(res.data["kashin"]["64"]["omega"]) == 4 and len(res.data["kashin"]["64"]["omega_by_seed"]) == 2
    claims = kashin.check(res)
    assert len(claims) == 5 and all(measured(claims))
    assert held(claims)[0] and held(claims)[1]  # UP and the Kashin bound hold whatever the sample size
    json.dumps(res.data)  # data.json is plain JSON
    assert kashin.figure(res, tmp_path / "figure.png").stat().st_size > 0
