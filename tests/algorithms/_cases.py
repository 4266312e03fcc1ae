"""One small configuration per registered algorithm (explicit stepsizes: no theory needed)."""

from __future__ import annotations

from tests.algorithms._toy import toy

#: name -> constructor keywords on the toy problem (gamma in units of 1/L_minus).
CASES: dict[str, dict] = {
    "gd": dict(),
    "psgd": dict(batch_size=2),
    "dcgd": dict(compressor="cq"),
    "qsgd": dict(batch_size=2),
    "diana": dict(compressor="iq", h0="grad", beta=0.5, reg="l1", lam=0.01, noise=0.1),
    "vr_diana": dict(compressor="cq", variant="lsvrg", ref_prob=0.3, reg="l2", lam=0.1),
    "vr_diana/saga": dict(compressor="cq", variant="saga"),
    "qsvrg": dict(compressor="iq", epoch_length=3),
    "terngrad_adam": dict(compressor="iq", clip=2.5, batch_size=2),
    "marina": dict(compressor="cq", p=0.3),
    "weighted_marina": dict(compressor="iq", p=0.3, tau=2),
    "ef": dict(compressor="iq", noise=0.1),
    "ef21": dict(compressor="cq", g0="compressed"),
    "ef21_sgd": dict(compressor="iq", batch_size=2),
    "double_squeeze": dict(compressor="iq", downlink_compressor="cq", batch_size=1),
    "cser": dict(compressor="iq", H=2, beta=0.5, weight_decay=0.01, noise=0.1),
    "neolithic": dict(compressor="iq", R=3, batch_size=1),
    "neolithic/bi": dict(compressor="cq", downlink_compressor="iq", R=2),
}

GAMMA = 0.1  # times 1/L_minus


def params_for(case: str, problem) -> dict:
    """The constructor keywords of ``case`` on ``problem`` (gamma resolved)."""
    kw = dict(CASES[case])
    kw.setdefault("gamma", GAMMA / problem.smoothness().L_minus)
    return kw


def build(case: str, problem=None, network=None, seed: int = 3):
    import commpress.algorithms  # noqa: F401  (registers the methods)
    import commpress as cp

    problem = toy() if problem is None else problem
    return cp.algorithms.make(case.split("/")[0], problem, network, seed=seed, **params_for(case, problem))


def check(case: str, problem=None, **kw):
    """:func:`commpress.testing.check_algorithm` on ``case`` (seed 3, as :func:`build`); every case but
    GD is randomized (compressors, minibatches or coins), so its iterates must depend on the seed."""
    from commpress.testing import check_algorithm

    problem = toy() if problem is None else problem
    return check_algorithm(case.split("/")[0], problem=problem, params=params_for(case, problem), seed=3,
                           randomized=case != "gd", **kw)
