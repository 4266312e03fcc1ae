"""The algorithm registry and constructor validation (one table of bad inputs)."""

from __future__ import annotations

import pytest
import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.errors import ConfigError, InputError, InputTypeError
from commpress.network import LocalNetwork

from tests.algorithms._toy import toy

ALL = ["cser", "dasha_pp", "dcgd", "diana", "diana_pp", "double_squeeze", "ef", "ef21", "ef21_pp", "ef21_sgd",
       "fednl", "fednl_bc", "fednl_cr", "fednl_ls", "fednl_pp", "gd", "marina", "marina_pp", "neolithic",
       "newton_3pc", "newton_3pc_bc", "newton_3pc_bc_pp", "psgd", "qsgd", "qsvrg", "terngrad_adam", "vr_diana", "weighted_marina"]
ALL = sorted(ALL + ["clag", "dasha", "dasha_mvr", "dasha_page", "lag", "three_pc"])  # lazy aggregation, momentum
ALL = sorted(ALL + ["compressed_scaffnew", "gradskip", "proxskip", "scaffnew", "tamuna"])  # local training
ALL = sorted(ALL + ["basis_learn", "bl2", "dcgd_plus", "diana_plus"])  # smoothness matrices, Basis Learn
ALL = sorted(ALL + ["ef21_bc", "ef21_p", "ef21_p_diana", "ef21_p_marina", "marina_p"])  # bidirectional


def test_names_and_docstrings():
    assert cp.algorithms.names() == ALL
    for name in ALL:
        cls = cp.algorithms.get(name)
        assert cls.name == name
        doc = cls.__doc__ or ""
        assert ".. math::" in doc and "References" in doc, name
        assert cp.algorithms.describe(name)


BAD = [
    # (name, kwargs, error, message fragment)
    ("marinna", {}, ConfigError, "Did you mean 'marina'"),
    ("marina", {"compressor": "cq", "q": 0.1}, ConfigError, "no parameter 'q'"),
    ("marina", {}, ConfigError, "needs a compressor"),
    ("marina", {"compressor": "cq", "p": 0.0}, ConfigError, "p in (0, 1]"),
    ("marina", {"compressor": "cq", "p": 1.5}, ConfigError, "p in (0, 1]"),
    ("marina", {"compressor": "cq", "p": 0.5, "convention": "loose"}, ConfigError, "convention"),
    ("gd", {"compressor": "cq"}, ConfigError, "takes no compressor"),
    ("gd", {"gamma": -1.0}, ConfigError, "gamma"),
    ("gd", {"gamma": float("nan")}, ConfigError, "gamma"),
    ("gd", {"seed": -3}, ConfigError, "seed"),
    ("dcgd", {"compressor": "nope"}, ConfigError, "unknown compressor"),
    ("dcgd", {"compressor": 3}, InputTypeError, "compressor name"),
    ("dcgd", {"compressor": "iq", "batch_size": 0}, ConfigError, "batch_size"),
    ("dcgd", {"compressor": "iq", "noise": -1.0}, ConfigError, "noise"),
    ("diana", {"compressor": "iq", "alpha": 2.0}, ConfigError, "alpha"),
    ("diana", {"compressor": "iq", "beta": 1.0}, ConfigError, "beta"),
    ("diana", {"compressor": "iq", "h0": "ones"}, ConfigError, "h0"),
    ("diana", {"compressor": "iq", "reg": "l3"}, ConfigError, "reg"),
    ("diana", {"compressor": "iq", "reg": "l1", "lam": -1}, ConfigError, "lam"),
    ("diana", {"compressor": "iq", "regime": "convex-ish"}, ConfigError, "regime"),
    ("vr_diana", {"compressor": "iq", "variant": "svrg"}, ConfigError, "variant"),
    ("qsvrg", {"compressor": "iq", "epoch_length": 0}, ConfigError, "epoch_length"),
    ("ef21", {"compressor": "iq", "g0": "random"}, ConfigError, "g0"),
    ("ef", {"compressor": "iq", "scale": "big"}, ConfigError, "scale"),
    ("ef", {"compressor": "iq", "scale": -1}, ConfigError, "scale"),
    ("cser", {"compressor": "iq", "H": 0}, ConfigError, "H"),
    ("neolithic", {"compressor": "iq", "R": 0}, ConfigError, "R"),
    ("neolithic", {"compressor": "iq", "scale": 0.5}, ConfigError, "scale"),
    ("terngrad_adam", {"compressor": "iq", "beta1": 1.0}, ConfigError, "beta1"),
    ("weighted_marina", {"compressor": "iq", "weights": "heavy"}, ConfigError, "weights"),
]


@pytest.mark.parametrize("name,kw,error,fragment", BAD)
def test_bad_settings_raise_clear_errors(name, kw, error, fragment):
    kw = {"gamma": 0.1, **kw}
    with pytest.raises(error) as info:
        cp.algorithms.make(name, toy(), **kw)
    assert fragment in str(info.value)


def test_problem_network_and_start_point_are_checked():
    problem = toy()
    with pytest.raises(ConfigError, match="n=5"):
        cp.algorithms.make("gd", problem, LocalNetwork(5), gamma=0.1)
    with pytest.raises(InputTypeError, match="Problem"):
        cp.algorithms.make("gd", "not a problem", gamma=0.1)
    alg = cp.algorithms.make("gd", problem, gamma=0.1)
    with pytest.raises(InputError, match="shape"):
        alg.init(torch.zeros(problem.d + 1, dtype=torch.float64))
    with pytest.raises(InputError, match="NaN"):
        alg.init(torch.full((problem.d,), float("nan"), dtype=torch.float64))
    with pytest.raises(ConfigError, match="finite-sum"):
        cp.algorithms.make("vr_diana", cp.problems.make("quadratic", n_clients=4, dim=5), compressor="iq", gamma=0.1)


def test_parameters_lists_the_constructor_keywords():
    assert {"p", "gamma", "seed", "compressor", "downlink_compressor", "convention"} <= set(cp.algorithms.parameters("marina"))
