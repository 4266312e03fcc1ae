"""benchmarks/slow_link.py --report-from: a file that is not a --save file gets one line and exit 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "slow_link.py"


def _module():
    spec = importlib.util.spec_from_file_location("slow_link_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main():
    return _module().main


@pytest.mark.parametrize("content", ["not json {", json.dumps({"rows": [], "probe": {}}), json.dumps([1, 2])])
def test_report_from_a_malformed_file_says_so_in_one_line(tmp_path, capsys, content):
    bad = tmp_path / "saved.json"
    bad.write_text(content)
    assert _main()(["--report-from", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a measurements file written by --save" in err[0]


def test_report_from_a_missing_file_says_so(tmp_path, capsys):
    assert _main()(["--report-from", str(tmp_path / "absent.json")]) == 2
    assert "FileNotFoundError" in capsys.readouterr().err


def test_the_committed_measurements_are_a_valid_save_file():
    """The file the closing note reports from has what --report-from reads (negative control above)."""
    saved = json.loads((SCRIPT.parent / "results" / "slow_link_100mbit_2026-12-06.json").read_text())
    rows = saved["rows"][0]
    assert {"methods", "params", "target_loss"} <= set(rows) and saved["probe"]["bandwidth"] > 0
    assert {"world", "rate", "steps", "batch_size", "params", "lr", "seed", "shaped_delay"} <= set(saved["args"])


def test_fsdp_link_model_explains_the_committed_fsdp2_step():
    """advise's FSDP2 row with no codec (FSDP's own collectives) is within 1.25x of the step measured
    across the namespaces, on the link the report builds: tc's rate, the probe's factors rebased onto it.
    Negative control: the factors copied unscaled onto tc's rate (the report before) are 1.45x off."""
    import argparse

    from commpress.integrations import advise as adv

    saved = json.loads((SCRIPT.parent / "results" / "slow_link_100mbit_2026-12-06.json").read_text())
    args = argparse.Namespace(**saved["args"])
    row = next(r for r in saved["rows"][0]["methods"] if r["method"] == "fsdp")
    model, _ = adv.make_model(params=args.params, batch_size=args.batch_size, seed=args.seed)
    units = adv.fsdp_units(model)
    fsdp = adv.measure_fsdp_candidates([], units, args.world)[0]  # FSDP's own: no codec to time
    assert fsdp.name == "FSDP2" and fsdp.codec_seconds == 0.0
    no_compute = adv.Compute(0.0, 0.0)

    def ratio(link):
        [fp32, pred] = adv.predict([adv.Candidate(adv.FP32, 4 * sum(units), 0.0, "all_reduce", 1), fsdp],
                                   link=link, processes=args.world, compute=no_compute, d=sum(units))
        return row["step"] / pred.step

    probed, link = _module()._advise_link(args, saved["probe"])
    assert link.bandwidth == adv.parse_bandwidth(args.rate) and probed.bandwidth == saved["probe"]["bandwidth"]
    assert 1 / 1.25 <= ratio(link) <= 1.25
    copied = adv.Link(link.bandwidth, link.latency, reduce_scatter_factor=probed.reduce_scatter_factor,
                      gather_tensor_factor=probed.gather_tensor_factor)
    assert ratio(copied) > 1.4
