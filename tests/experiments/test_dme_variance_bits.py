"""``commpress dme --plot variance-bits``: every compressor's per-client error against its bits, with the
uncertainty-principle line; the measured points respect the limit, a mis-reported bit count does not."""

from __future__ import annotations

import json

import pytest
import torch

from commpress.cli import main
from commpress.compressors import make
from commpress.errors import ConfigError
from commpress.experiments.dme import VARIANCE_BITS_COMPRESSORS, client_vectors, measure_variance_bits, run_variance_bits


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_points_respect_the_uncertainty_principle():
    names = ["kashin", "drive", "qsgd", "sign", "spherical", "natural"]
    points = run_variance_bits(n=4, d=64, mode="independent", compressors=names, repetitions=20)
    assert [p.label for p in points] == names
    for p in points:
        assert p.up_epsilon == pytest.approx(4.0 ** (-p.bits_per_coordinate))
        assert p.up_ratio >= 0.9, p  # Monte-Carlo noise of 20 repetitions only: the limit is 1
    unbiased = {p.label: p for p in points if p.kind == "unbiased"}
    for p in unbiased.values():  # epsilon = omega / (omega + 1) for an unbiased compressor
        assert p.epsilon == pytest.approx(p.vnmse / (1 + p.vnmse), rel=0.15)


def test_negative_control_misreported_bits_fall_below_the_line():
    X = client_vectors(4, 64, "independent", 0)
    C = make("spherical")
    apply = C.apply
    C.apply = lambda X, seed, **kw: (lambda out: (out[0], out[1] // 10))(apply(X, seed, **kw))
    p = measure_variance_bits(C, X, 20, 0, "spherical/10")
    assert p.up_ratio < 1.0


def test_labelled_instances_and_bad_repetitions():
    points = run_variance_bits(n=2, d=32, compressors=[("kashin lam=4", make("kashin", lam=4.0)), "kashin"],
                               repetitions=5)
    assert points[0].label == "kashin lam=4" and points[0].bits_per_coordinate > 3 * points[1].bits_per_coordinate / 2
    with pytest.raises(ConfigError):
        run_variance_bits(n=2, d=8, repetitions=1)
    assert "kashin" in VARIANCE_BITS_COMPRESSORS


def test_cli_variance_bits_plot(tmp_path, capsys):
    assert main(["dme", "--plot", "variance-bits", "--n", "3", "--d", "32", "--repetitions", "4", "--compressors",
                 "kashin,qsgd,sign", "--out", str(tmp_path), "--quiet"]) == 0
    assert "4^-b" in capsys.readouterr().out
    assert (tmp_path / "variance_bits.png").stat().st_size > 0
    data = json.loads((tmp_path / "variance_bits.json").read_text())
    assert {p["compressor"] for p in data["points"]} == {"kashin", "qsgd", "sign"}
    assert main(["dme", "--plot", "variance-bits", "--no-bound", "--n", "2", "--d", "16", "--repetitions", "3",
                 "--compressors", "kashin", "--out", str(tmp_path / "nb"), "--quiet"]) == 0
