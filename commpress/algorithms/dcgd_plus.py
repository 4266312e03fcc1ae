"""DCGD+: distributed compressed gradient descent with smoothness-aware compression."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.algorithms.base import INIT_ROUND, Algorithm, check_positive, resolve_compressor
from commpress.algorithms.dcgd import DCGD, DCGDState
from commpress.algorithms.registry import register
from commpress.compressors.base import Compressor
from commpress.errors import ConfigError

#: Regimes of the DCGD+/DIANA+ theory.
REGIMES = ("strongly_convex", "nonconvex")


class SmoothnessSetup:
    """What DCGD+ and DIANA+ build from ``problem.smoothness_matrices()``: the compressor and its constants.

    ``compressor``: the smoothness-aware sparsifier (``compressor=None``) or the given compressor
    applied in the smoothness geometry (:class:`~commpress.compressors.smoothness_aware.SmoothnessAware`);
    ``nu`` ``(n,)``: the variance constants :math:`\\nu_i`; ``omega``: the variance constant of the
    messages' own space (sparsifier: :math:`\\max(1/p_{ij}-1)`; SAQ: the inner compressor's);
    ``mode``: ``"sparsification"`` or ``"saq"``.
    """

    def __init__(self, owner: str, problem: Any, compressor: Any, *, tau: Any, ratio: Any, sampling: str,
                 levels: int) -> None:
        from commpress.compressors.smoothness_aware import SmoothnessAware, SmoothnessSparsifier, VaryingStepQuantizer
        from commpress.theory import smoothness as th

        try:
            L = problem.smoothness_matrices()
        except NotImplementedError:
            raise ConfigError(
                f"{owner} needs the problem's smoothness matrices, but {type(problem).__name__} does not "
                "implement smoothness_matrices(); use a quadratic, least_squares or (nonconvex_)logreg problem, "
                "or implement it."
            ) from None
        L = torch.as_tensor(L, dtype=torch.float64)
        n, d = int(problem.n), int(problem.d)
        if L.shape != (n, d, d):
            raise ConfigError(f"{owner}: smoothness_matrices() must have shape ({n}, {d}, {d}); got {tuple(L.shape)}.")
        self.L = L
        self.sampling, self.tau, self.levels = None, None, None
        if isinstance(compressor, SmoothnessSparsifier):
            self.compressor, self.mode = compressor, "sparsification"
        elif isinstance(compressor, SmoothnessAware):
            self.compressor, self.mode = compressor, "saq"
        elif compressor is None:
            if tau is not None and ratio is not None:
                raise ConfigError(f"{owner} takes tau or ratio, not both; got tau={tau!r}, ratio={ratio!r}.")
            if tau is None:
                r = 0.1 if ratio is None else check_positive("ratio", ratio, owner, upper=1.0)
                tau = max(1.0, float(round(r * d)))
            self.tau = check_positive("tau", tau, owner, upper=float(d))
            self.sampling = sampling
            self.compressor = SmoothnessSparsifier.from_matrices(L, self.tau, sampling)
            self.mode = "sparsification"
        else:
            if tau is not None or ratio is not None:
                raise ConfigError(
                    f"{owner}: tau/ratio set the budget of the smoothness-aware sparsifier (compressor=None); "
                    f"with compressor={compressor!r} drop them (the compressor sets its own budget)."
                )
            if compressor == "varying_steps" or (isinstance(compressor, dict) and compressor.get("name") == "varying_steps"):
                s = int(compressor.get("s", levels)) if isinstance(compressor, dict) else int(levels)
                self.levels = s
                inner: Compressor = VaryingStepQuantizer.from_matrices(L, s)
            else:
                inner = resolve_compressor(compressor, "compressor")
            self.compressor, self.mode = SmoothnessAware(inner, L), "saq"
        self.nu, self.omega = self._constants(th)

    def _constants(self, th) -> tuple[torch.Tensor, float]:
        from commpress.compressors.block import Block
        from commpress.compressors.dithering import Dithering
        from commpress.compressors.smoothness_aware import SmoothnessSparsifier, VaryingStepQuantizer

        C, L = self.compressor, self.L
        n, d = L.shape[0], L.shape[-1]
        if self.mode == "sparsification":
            return th.sparsification_nu(L, C.p), th.sparsification_omega(C.p)
        inner = C.inner
        t = inner.theory(n, d)
        omega = t.omega if t.omega is not None else math.inf
        if isinstance(inner, SmoothnessSparsifier):
            nu = th.transformed_sparsification_nu(L, inner.p)
        elif isinstance(inner, VaryingStepQuantizer):
            nu = th.varying_steps_nu(L, inner.t)
        elif isinstance(inner, (Block, Dithering)) and inner.p == 2 and type(inner).__name__ in ("Block", "Dithering", "QSGD"):
            size = getattr(inner, "block_size", None) or d
            nu = th.block_quantization_nu(L, min(int(size), d), inner.s)
        else:  # generic bound ||L^{1/2} e||^2 <= lambda_max(L_i) ||e||^2
            nu = omega * torch.linalg.eigvalsh(L)[:, -1].clamp_min(0.0)
        return nu, float(omega)

    def params(self) -> dict[str, Any]:
        return {"mode": self.mode, "sampling": self.sampling, "tau": self.tau, "levels": self.levels,
                "nu_max": float(self.nu.max()), "omega": self.omega}

    def charge_setup(self, algo: Algorithm) -> None:
        """SAQ: every client sends the upper triangle of :math:`\\mathbf L_i^{1/2}` once (round -1, dense float32)."""
        if self.mode != "saq":
            return
        rows = self.compressor.setup_rows().to(algo.problem.dtype)
        net = algo.network
        rows = rows if net.is_full else rows[net.clients]
        algo._up(rows, algo.dense, INIT_ROUND, "smoothness_matrix")


def check_regime(regime: Any, problem: Any, owner: str) -> str:
    if regime is None:
        try:
            mu = float(problem.smoothness().mu)
        except NotImplementedError:
            mu = 0.0
        return "strongly_convex" if mu > 0 else "nonconvex"
    if regime not in REGIMES:
        raise ConfigError(f"{owner} needs regime in {list(REGIMES)}; got regime={regime!r}.")
    return regime


@register("dcgd_plus")
class DCGDPlus(DCGD):
    r"""DCGD+ (Safaryan, Hanzely, Richtárik, *Smoothness matrices beat smoothness constants*, NeurIPS 2021).

    DCGD whose clients compress with knowledge of their smoothness matrices :math:`\mathbf L_i`
    (``problem.smoothness_matrices()``):

    .. math::
        x^{k+1} = x^k - \gamma\,\frac1n\sum_{i=1}^n \mathcal C_i(\nabla f_i(x^k)),\qquad
        \mathcal C_i(v)=\sum_j\frac{\xi_{ij}}{p_{ij}}v_je_j,\ \xi_{ij}\sim\mathrm{Bernoulli}(p_{ij}),

    with probabilities fixed from :math:`\mathbf L_i` (``sampling``: ``"trace"``
    :math:`p_{ij}\propto\sqrt{\mathbf L_{i,jj}}`, ``"exact"`` minimises :math:`\nu_i`, ``"uniform"``
    = Bernoulli Rand-τ, ``"equalise"``; expected ``tau`` kept coordinates). The paper's
    "optimal probabilities" are not recovered; these rules are library defaults
    (:mod:`commpress.theory`). With ``compressor=`` given, the smoothness-aware
    generalisation of Wang, Safaryan, Richtárik (NeurIPS 2022): client i sends
    :math:`\mathcal Q(\mathbf L_i^{\dagger1/2}\nabla f_i(x^k))` and the server applies :math:`\mathbf L_i^{1/2}`
    (``compressor="varying_steps"`` builds the varying-step quantizer with ``levels``; the one-time
    transfer of :math:`\mathbf L_i^{1/2}`, :math:`32d(d+1)/2` bits per client, is charged to round -1).

    Stepsize (``gamma=None``, [derived], paper's constant not recovered): strongly convex
    :math:`\gamma=\frac1{2(L+2\nu_{\max}/n)}`,
    :math:`\nu_i=\lambda_{\max}(\mathbf L_i^{1/2}\mathrm{Diag}(1/p_{ij}-1)\mathbf L_i^{1/2})`;
    nonconvex: DCGD's stepsize with the compressor's :math:`\omega`.

    Args:
        compressor: None (smoothness-aware sparsification) or a compressor for the SAQ form.
        tau, ratio: expected kept coordinates per client (default ``ratio=0.1``: round(0.1 d)).
        sampling: the probability rule (default ``"trace"``).
        levels: levels s of ``compressor="varying_steps"`` (default 1).
        regime: ``"strongly_convex"`` (default when μ > 0) or ``"nonconvex"``.
        batch_size, noise, horizon: as :class:`~commpress.algorithms.dcgd.DCGD`.

    References:
        Safaryan, Hanzely, Richtárik, NeurIPS 2021 (arXiv 2102.07245); Wang, Safaryan, Richtárik,
        NeurIPS 2022 (arXiv 2106.03524).
    """

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        tau: float | None = None,
        ratio: float | None = None,
        sampling: str = "trace",
        levels: int = 1,
        regime: str | None = None,
        batch_size: int | None = None,
        noise: float = 0.0,
        horizon: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.regime = check_regime(regime, problem, owner)
        self.setup = SmoothnessSetup(owner, problem, compressor, tau=tau, ratio=ratio, sampling=sampling, levels=levels)
        super().__init__(problem, network, self.setup.compressor, gamma=gamma, seed=seed,
                         downlink_compressor=downlink_compressor, batch_size=batch_size, noise=noise, horizon=horizon)

    def _theory_params(self) -> dict[str, Any]:
        out = {"nu_max": float(self.setup.nu.max()), "regime": self.regime}
        if self.horizon is not None:
            out["K"] = self.horizon
        return out

    def _extra_params(self) -> dict[str, Any]:
        return {**super()._extra_params(), **self.setup.params(), "regime": self.regime}

    def init(self, x0: torch.Tensor | None = None) -> DCGDState:
        state = super().init(x0)
        self.setup.charge_setup(self)
        return state
