"""Problem registry and the bad-parameter / bad-file table."""

from __future__ import annotations

import gzip

import pytest
import torch

import commpress as cp
import commpress.problems  # noqa: F401
from tests.problems._shared import need

make = cp.problems.make


def test_names_and_make():
    assert set(cp.problems.names()) >= {"quadratic", "quadratic_spread", "least_squares", "logreg", "nonconvex_logreg", "mlp"}
    for name in cp.problems.names():
        assert cp.problems.describe(name)
        assert "n_clients" in cp.problems.parameters(name)
    p = make("quadratic", n_clients=3, dim=4)
    assert make(p) is p
    assert p.describe()["name"] == "quadratic" and p.describe()["n"] == 3 and p.describe()["noise_scale"] == 0.05
    assert make("Nonconvex-LogReg", n_clients=2, dim=3).name == "nonconvex_logreg"


def test_example_of_the_brief():
    need("mushrooms")
    p = make("logreg", dataset="mushrooms", n_clients=12, l2=0.1)
    assert (p.n, p.d) == (12, 112) and p.smoothness().mu == 0.1
    assert p.describe()["dataset"] == "mushrooms" and p.describe()["samples"] == 8124


BAD = [
    (dict(name="quadratc"), "Did you mean 'quadratic'"),
    (dict(name="quadratic", dimm=3), "Did you mean 'dim'"),
    (dict(name="quadratic", dim=-1), "dim >= 1"),
    (dict(name="quadratic", dim=2.5), "integer dim"),
    (dict(name="quadratic", n_clients=0), "n_clients >= 1"),
    (dict(name="quadratic", noise_scale=-0.1), "noise_scale"),
    (dict(name="quadratic", reg=0.0), "reg > 0"),
    (dict(name="quadratic", scale=float("nan")), "scale"),
    (dict(name="quadratic", seed=-1), "seed"),
    (dict(name="quadratic", n_clients=2, nu_s=[1.0]), "nu_s must be 2"),
    (dict(name="quadratic", dtype="int8"), "dtype"),
    (dict(name="logreg", dataset="mushroom"), "Did you mean 'mushrooms'"),
    (dict(name="logreg", dataset="splice", n_clients=1001), "n_clients=1001 exceeds the number of samples N=1000"),
    (dict(name="logreg", dataset="splice", split="contigous"), "Did you mean 'contiguous'"),
    (dict(name="logreg", dataset="splice", dim=5), "dim= applies to synthetic data only"),
    (dict(name="logreg", n_features=5), "n_features applies to a dataset"),
    (dict(name="logreg", l2=-1), "l2"),
    (dict(name="logreg", start="ones"), "start"),
    (dict(name="nonconvex_logreg", reg="x"), "number reg"),
    (dict(name="least_squares", samples_per_client=0), "samples_per_client >= 1"),
    (dict(name="least_squares", n_clients=3, samples_per_client=2, split="label_skew", dim=2), None),  # fine
]


@pytest.mark.parametrize("params,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_parameters(params, message):
    params = dict(params)
    name = params.pop("name")
    if "splice" in str(params.get("dataset")):
        need("splice")
    if message is None:
        make(name, **params)
        return
    with pytest.raises(cp.ConfigError, match=message):
        make(name, **params)


def test_broken_data_files(tmp_path):
    need("splice")
    with pytest.raises(cp.DataFileError, match="does not exist"):
        make("logreg", dataset=str(tmp_path / "missing.svm"))
    raw = gzip.decompress(cp.datasets.locate("splice").read_bytes())
    truncated = tmp_path / "trunc.gz"
    truncated.write_bytes(gzip.compress(raw)[:20000])
    with pytest.raises(cp.DataFileError, match="trunc.gz.*truncated or corrupt"):
        make("logreg", dataset=str(truncated))
    lines = raw.decode().splitlines(keepends=True)
    lines[41] = "+1 1:0.5 2:oops\n"
    bad = tmp_path / "bad.svm"
    bad.write_text("".join(lines))
    with pytest.raises(cp.DataFileError, match="bad.svm.*line 42"):
        make("logreg", dataset=str(bad))
    multi = tmp_path / "multi.svm"
    multi.write_text("1 1:1\n2 1:2\n3 2:1\n")
    with pytest.raises(cp.ConfigError, match="binary"):
        make("logreg", dataset=str(multi))


def test_multiclass_is_fine_for_least_squares(tmp_path):
    f = tmp_path / "multi.svm"
    f.write_text("1 1:1\n2 1:2\n3 2:1\n4 1:1 2:1\n")
    p = make("least_squares", dataset=str(f), n_clients=2)
    assert p.targets[p.mask].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert torch.allclose(p.grad(p.optimum()[1]), torch.zeros(2, dtype=torch.float64), atol=1e-12)
