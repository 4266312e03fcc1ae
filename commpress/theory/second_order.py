r"""Newton-type methods with compressed Hessians: FedNL and its variants, Newton-3PC: formulas and default parameters.

The methods take no theoretical stepsize (their step is the Newton step, :math:`\gamma=1`), so
``BUILDERS`` is empty; what theory fixes is the Hessian learning rate :math:`\alpha`, the 3PC
constants :math:`(A, B)` of each Hessian-learning mechanism and the local convergence region and
rates (Islamov, Qian, Hanzely, Safaryan, Richtárik, *Distributed Newton-Type Methods with
Communication Compression and Bernoulli Aggregation*, TMLR 2023 [N3PC], Thm. 1, which re-proves
FedNL's Thm. 3.6 for every 3PC). Matrix classes are in Frobenius norm.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress.errors import ConfigError

__all__ = [
    "MECHANISMS", "hessian_learning_rate", "local_constants", "local_rate", "logistic_hessian_lipschitz",
    "model_learning_rate", "newton_3pc_constants",
]

#: name -> (builder, accepted keyword parameters); see ``commpress.theory.stepsizes``.
BUILDERS: dict = {}
#: Other accepted spellings of the names above.
ALIASES: dict = {}

#: Hessian-learning 3PC mechanisms of Newton-3PC (N3PC Sect. 3, App. A).
MECHANISMS = ("ef21", "lag", "clag", "cbag", "bag", "3pcv1", "3pcv2", "3pcv4", "3pcv5", "adaptive_topk", "rotation")


def hessian_learning_rate(kind: str, delta: float | None, omega: float | None, alpha: Any, owner: str) -> float:
    r"""FedNL's Hessian learning rate :math:`\alpha` (FedNL code ``upd_rule``; N3PC Sect. 3: alpha C is EF21 with contraction alpha delta).

    ``alpha="auto"``: 1 for a contractive compressor (rule 2, the papers' practical choice),
    :math:`1/(\omega+1)` for an unbiased one (rule 3); ``"conservative"``: :math:`1-\sqrt{1-\delta}`
    (rule 1, contractive only); a number in (0, 1]: that value.
    """
    if isinstance(alpha, str):
        if alpha == "auto":
            if kind == "contractive":
                return 1.0
            if kind == "unbiased" and omega is not None and math.isfinite(omega):
                return 1.0 / (omega + 1.0)
            raise ConfigError(f"{owner}: no automatic alpha for a {kind!r} compressor; pass alpha=<in (0, 1]>.")
        if alpha == "conservative":
            if kind != "contractive" or delta is None:
                raise ConfigError(f"{owner}: alpha='conservative' (1 - sqrt(1 - delta)) needs a contractive "
                                  f"compressor; got kind={kind!r}. Pass alpha='auto' or a number.")
            return 1.0 - math.sqrt(1.0 - delta)
        raise ConfigError(f"{owner} needs alpha='auto', 'conservative' or a number in (0, 1]; got alpha={alpha!r}.")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner} needs alpha='auto', 'conservative' or a number in (0, 1]; got alpha={alpha!r}.") from None
    if not 0.0 < a <= 1.0:
        raise ConfigError(f"{owner} needs alpha in (0, 1]; got alpha={alpha!r}. Use alpha='auto'.")
    return a


def model_learning_rate(kind: str, delta: float | None, omega: float | None, eta: Any, owner: str) -> float:
    r"""FedNL-BC's model learning rate :math:`\eta` (FedNL code ``iter_upd_rule``): the same rules as
    :func:`hessian_learning_rate` applied to the model compressor."""
    return hessian_learning_rate(kind, delta, omega, eta, owner)


def newton_3pc_constants(mechanism: str, *, delta: float = 1.0, p: float = 1.0, zeta: float = 1.0,
                       omega: float = 0.0, s: float | None = None, delta2: float = 1.0, d0: int | None = None,
                       dim: int | None = None) -> tuple[float, float]:
    r"""3PC constants :math:`(A, B)` of a Hessian-learning mechanism (N3PC Sect. 3 and App. A; derived where noted).

    :math:`\mathbb E\|\mathcal C_{H,Y}(X)-X\|_F^2\le(1-A)\|H-Y\|_F^2+B\|X-Y\|_F^2`. ``s`` is the free
    Young parameter; default: half its admissible maximum. CBAG's A is the corrected
    :math:`1-(1-p\delta)(1+s)` (N3PC's Lemma prints :math:`(1-p\delta)(1+s)`; its proof gives the former).

    Further mechanisms: ``"3pcv1"`` :math:`(1, 1-\delta)`; ``"3pcv2"`` (outer :math:`\mathcal C\in\mathbb B(\delta)`,
    inner :math:`\mathcal Q\in\mathbb U(\omega)`) :math:`(\delta, (1-\delta)\omega)`; ``"3pcv4"`` the EF21 constants
    with :math:`1-\delta=(1-\delta_1)(1-\delta_2)` (``delta``, ``delta2``); ``"3pcv5"``
    :math:`(1-(1-p)(1+s), (1-p)(1+1/s)(1-\delta))` (these four derived); ``"adaptive_topk"`` (budget
    ``d0`` of ``dim``:math:`^2` entries) :math:`(\frac{d_0}{2d^2}, \max\{(1-\frac{d_0}{d^2})(\frac{2d^2}{d_0}-1), 3\})`;
    ``"rotation"`` :math:`(\delta/2, (1-\delta)(2-\delta)/\delta)` (N3PC App. A).
    """
    def young(q: float) -> tuple[float, float]:  # EF21-type with effective contraction q
        if q >= 1.0:
            return 1.0, 0.0
        s_ = 0.5 * q / (1.0 - q) if s is None else float(s)
        if not 0 < s_ < q / (1.0 - q):
            raise ConfigError(f"3PC constants need 0 < s < {q / (1 - q):.4g}; got s={s}.")
        return 1.0 - (1.0 - q) * (1.0 + s_), (1.0 - q) * (1.0 + 1.0 / s_)

    if mechanism == "ef21":
        return young(delta)
    if mechanism == "lag":
        return 1.0, float(zeta)
    if mechanism == "clag":
        A, B = young(delta)
        return A, max(B, float(zeta))
    if mechanism == "cbag":
        return young(p * delta)
    if mechanism == "bag":
        return young(p)
    if mechanism == "3pcv1":
        return 1.0, 1.0 - delta
    if mechanism == "3pcv2":
        return float(delta), (1.0 - delta) * float(omega)
    if mechanism == "3pcv4":
        return young(1.0 - (1.0 - delta) * (1.0 - delta2))
    if mechanism == "adaptive_topk":
        if d0 is None or dim is None or not 0 < d0 <= dim * dim:
            raise ConfigError(f"adaptive_topk constants need dim and 0 < d0 <= dim^2; got d0={d0}, dim={dim}.")
        q = d0 / dim**2
        return q / 2.0, max((1.0 - q) * (2.0 / q - 1.0), 3.0)
    if mechanism == "rotation":
        if not 0 < delta <= 1:
            raise ConfigError(f"rotation constants need 0 < delta <= 1; got delta={delta}.")
        return delta / 2.0, (1.0 - delta) * (2.0 - delta) / delta
    if mechanism == "3pcv5":
        A, B = young(p)
        return A, B * (1.0 - delta)
    raise ConfigError(f"unknown 3PC mechanism {mechanism!r}; use one of {list(MECHANISMS)}.")


def local_constants(option: int, L_star: float, L_F: float) -> tuple[float, float]:
    r"""N3PC Thm. 1: :math:`(C, D)` = (2, :math:`L_*^2`) for option 1, (8, :math:`(L_*+2L_F)^2`) for option 2."""
    if option == 1:
        return 2.0, L_star**2
    if option == 2:
        return 8.0, (L_star + 2.0 * L_F) ** 2
    raise ConfigError(f"option must be 1 or 2; got {option!r}.")


def local_rate(A: float, B: float, *, option: int, mu: float, L_star: float, L_F: float) -> dict[str, float]:
    r"""The local theory of N3PC Thm. 1 and Lemma "Deterministic 3PC".

    Returns ``rate`` :math:`1-\min\{A/2, 1/3\}` (of :math:`\mathbb E\Phi^k`), ``phi_weight``
    :math:`6(1/A+3AB)L_F^2` (of :math:`\|x^k-x^*\|^2` in :math:`\Phi^k`), ``radius``
    :math:`e_1=\min\{A\mu/(\sqrt{8(1+3AB)}L_F), \mu/\sqrt{2D}\}`, ``hessian_radius``
    :math:`\mu/(2\sqrt C)` (of :math:`\|H_i^0-\nabla^2f_i(x^*)\|_F`), and ``C``, ``D``. Inside the region
    :math:`\|x^k-x^*\|^2\le2^{-k}\|x^0-x^*\|^2`.
    """
    C, D = local_constants(option, L_star, L_F)
    radius = min(A * mu / (math.sqrt(8 * (1 + 3 * A * B)) * L_F) if L_F > 0 else math.inf,
                 mu / math.sqrt(2 * D) if D > 0 else math.inf)
    return dict(rate=1.0 - min(A / 2.0, 1.0 / 3.0), phi_weight=6.0 * (1.0 / A + 3.0 * A * B) * L_F**2,
                radius=radius, hessian_radius=mu / (2.0 * math.sqrt(C)), C=C, D=D)


def logistic_hessian_lipschitz(features: torch.Tensor, counts: torch.Tensor, *, reduce: str = "mean") -> float:
    r"""Hessian Lipschitz bound of logistic regression: :math:`L_*\le L_F\le\frac1{6\sqrt3\,m_i}\sum_j\|a_{ij}\|^3`.

    :math:`|\phi'''|\le 1/(6\sqrt3)` for the logistic loss. ``features`` ``(n, m_max, d)`` (zero padding),
    ``counts`` ``(n,)``; ``reduce="mean"`` averages over clients (FedNL code ``get_M``), ``"max"`` is the
    safe per-client value.
    """
    per = features.to(torch.float64).norm(dim=-1).pow(3).sum(-1) / counts.to(torch.float64) / (6.0 * math.sqrt(3.0))
    return float(per.mean() if reduce == "mean" else per.max())
