"""Distributed mean estimation (DME): how well does each compressor estimate the clients' mean?

n clients hold vectors x_1..x_n (``mode``: ``identical``; ``correlated`` around a common mean
with relative spread ``spread``; ``independent``). Every compressor sends one message per
client and the server averages the reconstructions. We measure the normalised MSE

    NMSE = E || (1/n) sum_i C_i(x_i) - xbar ||^2 / ( (1/n) sum_i ||x_i||^2 )

(the normalisation of Vargaftik et al., DRIVE, NeurIPS 2021, and EDEN, ICML 2022) over ``repetitions`` round seeds, and
the bits per coordinate actually sent (payload bytes * 8 / d, averaged over clients), next to
the theory's prediction from the compressor's constants:

- unbiased / correlated: the AB inequality gives NMSE <= A - B ||xbar||^2 / mean ||x_i||^2
  (for CQ-type compressors on identical vectors, the homogeneous constant A_homogeneous);
- contractive: NMSE <= 1 - delta (Jensen over the clients).

:func:`run_variance_bits` (``commpress dme --plot variance-bits``) measures instead each client's own
error after the best fixed scale against the bits it sends, next to the uncertainty principle of
Safaryan, Shulgin, Richtárik (Information and Inference 2022): no compressor sending b bits per
coordinate has an error below :math:`4^{-b}`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from commpress import compressors as C_
from commpress._rng import derive_seed, shared_generator
from commpress.errors import ConfigError

MODES = ("identical", "correlated", "independent")
DEFAULT_COMPRESSORS = (
    "identity", "iq", "cq", "qsgd", "dithering", "natural_dithering", "natural", "terngrad", "block",
    "randk", "permk", "permk+cq", "drive", "eden", "topk", "sign", "wangni",
)  # sketch (an SRHT by default; kind="gaussian" is O(n d k) draws) is not in the default set: add it by name


@dataclass(frozen=True)
class DMEResult:
    compressor: str
    kind: str
    bits_per_coordinate: float
    nmse: float
    nmse_stderr: float
    nmse_theory: float | None
    theory_note: str

    def as_dict(self) -> dict:
        return asdict(self)


def client_vectors(n: int, d: int, mode: str, seed: int, spread: float = 0.1, dtype=torch.float64) -> torch.Tensor:
    """The DME input: an ``(n, d)`` batch in one of :data:`MODES`."""
    if mode not in MODES:
        raise ConfigError(f"DME mode must be one of {list(MODES)}; got {mode!r}.")
    g = shared_generator(seed, "dme/data")
    mean = torch.randn(d, generator=g, dtype=dtype)
    if mode == "identical":
        return mean.expand(n, d).clone()
    if mode == "correlated":
        noise = torch.randn(n, d, generator=g, dtype=dtype)
        return mean + spread * noise
    return torch.randn(n, d, generator=g, dtype=dtype)


def _theory(comp, X: torch.Tensor, mode: str) -> tuple[float | None, str]:
    n, d = X.shape
    th = comp.theory(n, d)
    mean_sq = float(X.pow(2).sum(1).mean())
    xbar_sq = float(X.mean(0).pow(2).sum())
    if th.kind in ("unbiased", "correlated", "combinatorial"):
        A, B = th.A, th.B
        note = "AB bound"
        if mode == "identical" and "A_homogeneous" in th.extras:
            A, B, note = th.extras["A_homogeneous"], 0.0, "homogeneous bound"
        if A is None or not math.isfinite(A):
            return None, "no constant"
        return A - (B or 0.0) * xbar_sq / mean_sq, note
    if th.kind == "contractive" and th.delta is not None:
        return 1.0 - th.delta, "1 - delta"
    return None, "no class"


def run_dme(
    n: int = 16,
    d: int = 1024,
    mode: str = "identical",
    compressors: list[str] | tuple[str, ...] | None = None,
    repetitions: int = 100,
    seed: int = 0,
    spread: float = 0.1,
    progress=None,
) -> list[DMEResult]:
    """Estimate the mean of the DME input with every compressor; one result per compressor."""
    if n < 1 or d < 1:
        raise ConfigError(f"DME needs n >= 1 and d >= 1; got n={n}, d={d}.")
    if repetitions < 2:
        raise ConfigError(f"DME needs repetitions >= 2 to estimate an error bar; got {repetitions}.")
    names = list(compressors) if compressors else [c for c in DEFAULT_COMPRESSORS if c in C_.names()]
    X = client_vectors(n, d, mode, seed, spread)
    xbar = X.mean(0)
    mean_sq = float(X.pow(2).sum(1).mean())
    results = []
    for name in names:
        comp = C_.make(name)
        errors = torch.empty(repetitions, dtype=torch.float64)
        bits_total = 0.0
        for r in range(repetitions):
            X_hat, bits = comp.apply(X, derive_seed(seed, "dme", name, r))
            errors[r] = (X_hat.mean(0) - xbar).pow(2).sum()
            bits_total += float(bits.double().mean())
        nmse = errors / mean_sq
        theory, note = _theory(comp, X, mode)
        results.append(DMEResult(
            compressor=name, kind=comp.theory(n, d).kind,
            bits_per_coordinate=bits_total / repetitions / d,
            nmse=float(nmse.mean()), nmse_stderr=float(nmse.std() / repetitions**0.5),
            nmse_theory=theory, theory_note=note,
        ))
        if progress is not None:
            progress(name)
    return results


def format_table(results: list[DMEResult]) -> str:
    """A fixed-width table, one line per compressor."""
    head = f"{'compressor':<18} {'kind':<12} {'bits/coord':>10} {'NMSE':>11} {'± stderr':>10} {'theory':>11}  note"
    lines = [head, "-" * len(head)]
    for r in sorted(results, key=lambda r: r.bits_per_coordinate):
        th = f"{r.nmse_theory:11.3e}" if r.nmse_theory is not None else f"{'-':>11}"
        lines.append(
            f"{r.compressor:<18} {r.kind:<12} {r.bits_per_coordinate:10.3f} {r.nmse:11.3e} {r.nmse_stderr:10.1e} {th}  {r.theory_note}"
        )
    return "\n".join(lines)


def plot_dme(results: list[DMEResult], path, title: str) -> None:
    """NMSE against bits per coordinate, one labelled point per compressor (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    for r in results:
        y = max(r.nmse, 1e-18)
        marker = "*" if r.compressor in ("cq", "permk+cq") else "o"
        ax.scatter(r.bits_per_coordinate, y, s=70 if marker == "*" else 35, marker=marker, zorder=3)
        ax.annotate(r.compressor, (r.bits_per_coordinate, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if r.nmse_theory is not None and r.nmse_theory > 0:
            ax.plot([r.bits_per_coordinate] * 2, [y, r.nmse_theory], color="0.8", lw=0.8, zorder=1)
            ax.scatter(r.bits_per_coordinate, r.nmse_theory, marker="_", color="0.5", zorder=2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bits per coordinate (payload, per client)")
    ax.set_ylabel("NMSE of the mean estimate")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.scatter([], [], marker="_", color="0.5", label="theory bound")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------- variance per bit
#: The compressors of ``commpress dme --plot variance-bits`` by default: the DME set and the
#: compressors of the uncertainty-principle, optimal- and biased-compression papers.
VARIANCE_BITS_COMPRESSORS = DEFAULT_COMPRESSORS + (
    "kashin", "sparse_dithering", "spherical", "biased_rounding", "topk_q", "adaptive_sparsification",
    "biased_sparsification",
)


@dataclass(frozen=True)
class VarianceBitsPoint:
    """One compressor's per-client error and bits, next to the uncertainty-principle limit.

    ``epsilon``: the normalised error after the best fixed scale,
    :math:`\\varepsilon = 1 - (\\mathbb E\\langle\\mathcal C(x), x\\rangle)^2 / (\\mathbb E\\|\\mathcal C(x)\\|^2\\|x\\|^2)`
    (:math:`\\omega/(\\omega+1)` for an unbiased compressor), averaged over the clients; ``vnmse``:
    :math:`\\mathbb E\\|\\mathcal C(x) - x\\|^2/\\|x\\|^2`; ``up_epsilon``: :math:`4^{-b}` at the measured
    b bits per coordinate (no compressor can be below it); ``up_ratio`` = epsilon / up_epsilon (>= 1).
    """

    compressor: str
    kind: str
    bits_per_coordinate: float
    epsilon: float
    vnmse: float
    up_epsilon: float
    up_ratio: float
    label: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def measure_variance_bits(comp, X: torch.Tensor, repetitions: int, seed: int, label: str) -> VarianceBitsPoint:
    """Per-client UP error and bits of one compressor instance on the rows of ``X`` (float64)."""
    from commpress.theory.compression_limits import up_epsilon

    n, d = X.shape
    norm_sq = X.pow(2).sum(1)
    inner = torch.zeros(n, dtype=torch.float64)
    out_sq = torch.zeros(n, dtype=torch.float64)
    err = torch.zeros(n, dtype=torch.float64)
    bits_total = 0.0
    for r in range(repetitions):
        X_hat, bits = comp.apply(X, derive_seed(seed, "dme/variance-bits", label, r))
        X_hat = X_hat.double()
        inner += (X_hat * X).sum(1)
        out_sq += X_hat.pow(2).sum(1)
        err += (X_hat - X).pow(2).sum(1)
        bits_total += float(bits.double().mean())
    inner, out_sq, err = inner / repetitions, out_sq / repetitions, err / repetitions
    ok = norm_sq > 0
    eps = torch.where(out_sq > 0, 1.0 - inner.pow(2) / (out_sq * norm_sq).clamp_min(1e-300), torch.ones_like(out_sq))
    epsilon = float(eps[ok].clamp_min(0.0).mean())
    vnmse = float((err[ok] / norm_sq[ok]).mean())
    b = bits_total / repetitions / d
    floor = up_epsilon(b * d, d)
    return VarianceBitsPoint(compressor=comp.name, kind=comp.theory(n, d).kind, bits_per_coordinate=b,
                             epsilon=epsilon, vnmse=vnmse, up_epsilon=floor, up_ratio=epsilon / floor, label=label)


def run_variance_bits(
    n: int = 16,
    d: int = 1024,
    mode: str = "independent",
    compressors: list | tuple | None = None,
    repetitions: int = 20,
    seed: int = 0,
    spread: float = 0.1,
    progress=None,
) -> list[VarianceBitsPoint]:
    """Every compressor's per-client error (after the best scale) against its bits per coordinate.

    ``compressors``: names, instances, or ``(label, instance)`` pairs (e.g. Kashin at several
    redundancies); default :data:`VARIANCE_BITS_COMPRESSORS`.
    """
    if n < 1 or d < 1:
        raise ConfigError(f"DME needs n >= 1 and d >= 1; got n={n}, d={d}.")
    if repetitions < 2:
        raise ConfigError(f"the variance-bits plot needs repetitions >= 2; got {repetitions}.")
    items = list(compressors) if compressors else [c for c in VARIANCE_BITS_COMPRESSORS if c in C_.names()]
    X = client_vectors(n, d, mode, seed, spread)
    points = []
    for item in items:
        label, comp = item if isinstance(item, tuple) else (None, item)
        comp = C_.make(comp)
        points.append(measure_variance_bits(comp, X, repetitions, seed, label or comp.name))
        if progress is not None:
            progress(label)
    return points


def format_variance_bits(points: list[VarianceBitsPoint]) -> str:
    """A fixed-width table, one line per compressor: bits, error, the UP floor and the ratio."""
    head = f"{'compressor':<28} {'kind':<12} {'bits/coord':>10} {'epsilon':>11} {'vNMSE':>11} {'4^-b':>11} {'ratio':>9}"
    lines = [head, "-" * len(head)]
    for p in sorted(points, key=lambda p: p.bits_per_coordinate):
        lines.append(f"{p.label:<28} {p.kind:<12} {p.bits_per_coordinate:10.3f} {p.epsilon:11.3e} {p.vnmse:11.3e} "
                     f"{p.up_epsilon:11.3e} {p.up_ratio:9.3g}")
    return "\n".join(lines)


def plot_variance_bits(points: list[VarianceBitsPoint], path, title: str, bound: bool = True) -> None:
    """Error after the best scale against bits per coordinate (log y), one point per compressor, and
    the uncertainty-principle line :math:`\\varepsilon = 4^{-b}` (``bound``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    for p in points:
        y = max(p.epsilon, 1e-18)
        ax.scatter(p.bits_per_coordinate, y, s=35, marker="o" if p.kind != "contractive" else "s", zorder=3)
        ax.annotate(p.label, (p.bits_per_coordinate, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    if bound and points:
        hi = max(max(p.bits_per_coordinate for p in points), 1.0) * 1.1
        lo = min(min(p.bits_per_coordinate for p in points), 0.5) * 0.9
        b = torch.linspace(lo, hi, 200)
        ax.plot(b.tolist(), (4.0 ** (-b)).clamp_min(1e-18).tolist(), color="k", lw=1.2,
                label=r"uncertainty principle $\varepsilon = 4^{-b}$")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    positive = [p.epsilon for p in points if p.epsilon > 0]
    if positive:
        ax.set_ylim(bottom=max(1e-18, min(positive) / 30), top=2.0)
    ax.set_xlabel("bits per coordinate (payload, per client)")
    ax.set_ylabel(r"error after the best scale $\varepsilon$ (per client)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
