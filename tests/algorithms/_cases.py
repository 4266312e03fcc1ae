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
    "three_pc": dict(compressor="randk", mechanism="3pcv5", p=0.3),
    "lag": dict(zeta=0.5),
    "clag": dict(compressor="randk", zeta=0.5),
    "dasha": dict(compressor="randk"),
    "dasha_page": dict(compressor="randk", batch_size=2, p=0.5),
    "dasha_mvr": dict(compressor="natural", batch_size=2, b=0.5, mega_batch=4),
    "proxskip": dict(p=0.5, reg="l1", lam=0.01, noise=0.1),
    "scaffnew": dict(p=0.5, noise=0.1),  # noisy gradients: seeds 0 and 1 share their 4 coins (p = 1/16)
    "gradskip": dict(p=0.5, q=[1.0, 0.5, 0.3, 0.8]),
    "tamuna": dict(p=0.5, c=3, s=2),
    "compressed_scaffnew": dict(p=0.5),
    "ef21_p": dict(downlink_compressor="randk"),
    "ef21_p_diana": dict(compressor="randk", downlink_compressor=dict(name="topk", k=2)),
    "ef21_p_marina": dict(compressor="randk", downlink_compressor="randk", p=0.3),
    "marina_p": dict(downlink_compressor="permk", p=0.3),
    "marina_p/same": dict(downlink_compressor="randk", messages="same", p=0.3),
    "marina_pp": dict(compressor="randk", p=0.3, participation="nice:2"),
    "ef21_pp": dict(compressor="cq", g0="compressed", participation="independent:0.5"),
    "diana_pp": dict(compressor="iq", h0="grad", participation="nice:3"),
    "dasha_pp": dict(compressor="randk", participation="nice:2"),
    "ef21_bc": dict(compressor="randk", downlink_compressor=dict(name="topk", k=2)),
    "fednl": dict(compressor={"name": "randk", "k": 5}, option=2),
    "fednl_ls": dict(compressor={"name": "randk", "k": 5}, mu=0.05),
    "fednl_cr": dict(compressor={"name": "randk", "k": 5}, L_star=0.5),
    "fednl_pp": dict(compressor="rank", tau=2, h0="zero"),
    "fednl_bc": dict(compressor="topk", model_compressor={"name": "topk", "ratio": 0.5}, p=0.5, mu=0.05, h0="zero"),
    "newton_3pc": dict(mechanism="cbag", p=0.5, mu=0.05),
    "newton_3pc/clag": dict(mechanism="clag", compressor={"name": "randk", "k": 5}, option=2),
    "newton_3pc_bc": dict(mechanism="cbag", p_hess=0.5, p=0.5, mu=0.05, model_mechanism="cbag", p_model=0.5),
    "newton_3pc_bc_pp": dict(compressor={"name": "randk", "k": 5}, tau=2, p=0.5, h0="zero"),
    "dcgd_plus": dict(tau=2),
    "diana_plus": dict(tau=2, h0="grad"),
    "diana_plus/saq": dict(compressor="randk", beta=0.5),
    "bl2": dict(basis="standard", compressor={"name": "randk", "k": 5}, tau=2, p=0.5, gamma=1.0),
    "basis_learn": dict(basis="standard", compressor={"name": "randk", "k": 5}, gamma=1.0),
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
                           randomized=case not in ("gd", "lag"), **kw)
