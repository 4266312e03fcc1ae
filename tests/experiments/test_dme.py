import json

import pytest

from commpress.cli import main
from commpress.errors import ConfigError
from commpress.experiments.dme import client_vectors, run_dme


def test_cq_beats_iq_on_identical_vectors_at_the_same_bits():
    res = {r.compressor: r for r in run_dme(n=8, d=64, mode="identical", compressors=["iq", "cq"], repetitions=40)}
    assert res["cq"].bits_per_coordinate == res["iq"].bits_per_coordinate
    assert res["cq"].nmse * 4 < res["iq"].nmse  # about n = 8 times below
    assert res["cq"].nmse <= res["cq"].nmse_theory  # the homogeneous bound d / n^2


def test_modes_and_bad_parameters():
    assert client_vectors(3, 5, "identical", 0).unique(dim=0).shape[0] == 1
    assert client_vectors(3, 5, "independent", 0).unique(dim=0).shape[0] == 3
    with pytest.raises(ConfigError):
        client_vectors(3, 5, "same", 0)
    with pytest.raises(ConfigError):
        run_dme(n=2, d=4, repetitions=1)


def test_dme_command_writes_table_plot_and_json(tmp_path, capsys):
    assert main(["dme", "--n", "4", "--d", "16", "--repetitions", "5", "--compressors", "iq,cq",
                 "--out", str(tmp_path), "--quiet"]) == 0
    assert "NMSE" in capsys.readouterr().out
    assert (tmp_path / "dme.png").stat().st_size > 0
    assert {r["compressor"] for r in json.loads((tmp_path / "results.json").read_text())["results"]} == {"iq", "cq"}
    assert main(["dme", "--compressors", "nope", "--out", str(tmp_path)]) == 2
