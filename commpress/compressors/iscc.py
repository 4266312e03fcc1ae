"""ISCC: importance-sampling combinatorial compressor (Tyurin et al.; CQ paper App. C.2)."""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import derive_seed, shared_generator
from commpress.compressors._checks import check_int
from commpress.compressors._nested import check_finite, decode_context, piece_widths, resolve, spec_of
from commpress.compressors.base import Compressor, CompressorTheory, Context
from commpress.compressors.registry import register
from commpress.errors import ConfigError, PayloadError

_UNBIASED = ("unbiased", "correlated")


@register("iscc")
class ISCC(Compressor):
    r"""Importance sampling of clients, each drawn client sending an independent compression.

    Shared draws :math:`\chi_1..\chi_\tau` i.i.d. with :math:`P(\chi = i) = q_i` (tag
    ``"iscc/chi"``: :math:`\tau` float64 uniforms, :math:`\chi_t` = the number of cumulative weights
    :math:`\le U_t`). For every draw t the client :math:`\chi_t` compresses its vector with the inner
    compressor :math:`\mathcal C^{(t)}`, run alone (n = 1) with the seed
    ``derive_seed(seed, "iscc/inner", t)`` (independent across draws). Rows:

    .. math:: \hat X_i = \frac{1}{\tau q_i}\sum_{t:\chi_t = i}\mathcal C^{(t)}(x_i)\quad(0 \text{ if never drawn}),
              \qquad \frac1n\sum_i \hat X_i
              = \frac1\tau\sum_{t=1}^\tau \frac{\mathcal C^{(t)}(x_{\chi_t})}{n q_{\chi_t}},

    so every row is individually unbiased and the mean is the combinatorial estimate. With
    :math:`V_i` the inner's error at :math:`x_i`, exactly

    .. math:: \mathbb E\Big\|\frac1n\sum_i\hat X_i - \bar x\Big\|^2
              = \frac1\tau\Big(\sum_i\frac{\|x_i\|^2 + V_i}{n^2 q_i} - \|\bar x\|^2\Big),

    i.e. WAB(:math:`\frac{\omega+1}\tau, \frac1\tau, q`) (Lemma 4) and, unweighted,
    AB(:math:`\frac{\omega+1}{\tau n\min_i q_i}, \frac1\tau`). Per row:
    :math:`\mathbb E\|\hat X_i - x_i\|^2 = \frac{(1-q_i)\|x_i\|^2 + V_i}{\tau q_i}`, reported as ``omega``
    (its maximum over i). ``theory().extras`` holds ``WAB_A``, ``WAB_B`` and the weights.

    Payload of client i: its :math:`m_i = \#\{t : \chi_t = i\}` inner payloads in the order of t,
    concatenated (0 bytes if never drawn); :math:`\tau q_i\,\text{bits}_{\mathcal C}` expected.

    Args:
        inner: an unbiased compressor (name, instance or ``{"name": ..., **params}``); default
            ``"drive"`` (the CQ paper's App. C.3 "ISCC based on DRIVE").
        tau: the number of draws :math:`\tau \ge 1` (default 1, Cor. 4).
        weights: n positive numbers, e.g. the smoothness constants :math:`L_i` (Thm. 3), normalised
            to :math:`q`; default uniform. Checked against n at call time.

    References:
        Tyurin, Sun, Burlachenko, Richtárik, Sharper rates and flexible framework for nonconvex
        SGD with client and data sampling, 2022 (importance sampling, WAB); Panferov et al. 2024,
        App. C.2, Lemma 4, Thm. 3.
    """

    correlated = True

    def __init__(self, inner: Any = "drive", tau: int = 1, weights: Any = None) -> None:
        self.inner = resolve(inner, "ISCC", "inner")
        self.tau = check_int("tau", tau, "ISCC", hint=" tau is the number of client draws per round.")
        self.weights = None if weights is None else self._check_weights(weights)

    @staticmethod
    def _check_weights(weights: Any) -> tuple[float, ...]:
        try:
            w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"ISCC weights must be a list of n positive numbers; got {weights!r}.") from None
        if torch.as_tensor(weights).dim() > 1 or w.numel() == 0:
            raise ConfigError(f"ISCC weights must be a flat list of n positive numbers; got shape "
                              f"{tuple(torch.as_tensor(weights).shape)}.")
        bad = ~(torch.isfinite(w) & (w > 0))
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ConfigError(
                f"ISCC weights must all be finite and > 0 (q_i = 0 would never sample client i and break "
                f"unbiasedness); got weights[{i}]={w[i].item()}."
            )
        return tuple(w.tolist())

    def params(self) -> dict:
        weights = None if self.weights is None else list(self.weights)
        return {"inner": spec_of(self.inner), "tau": self.tau, "weights": weights}

    # ------------------------------------------------------------------ draws
    def _q(self, n: int) -> torch.Tensor:
        if self.weights is None:
            return torch.full((n,), 1.0 / n, dtype=torch.float64)
        if len(self.weights) != n:
            raise ConfigError(
                f"ISCC has {len(self.weights)} weights but the round has n={n} clients; give one weight per client."
            )
        w = torch.tensor(self.weights, dtype=torch.float64)
        return w / w.sum()

    def _draws(self, ctx: Context) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
        """(q, [(t, row, inner seed) for every draw whose client is a row of this call, in order of t])."""
        q = self._q(ctx.n)
        u = torch.rand(self.tau, generator=shared_generator(ctx.seed, "iscc/chi"), dtype=torch.float64)
        chi = torch.searchsorted(torch.cumsum(q, 0), u, right=True).clamp_(max=ctx.n - 1)
        row_of = torch.full((ctx.n,), -1, dtype=torch.int64)
        row_of[ctx.clients] = torch.arange(ctx.rows)
        rows = row_of[chi].tolist()
        draws = [(t, r, derive_seed(ctx.seed, "iscc/inner", t)) for t, r in enumerate(rows) if r >= 0]
        return q, draws

    def _check_shape(self, ctx: Context) -> None:
        self._q(ctx.n)

    def _weight(self, q: torch.Tensor, ctx: Context, row: int) -> float:
        return 1.0 / (self.tau * float(q[ctx.clients[row]]))

    # ------------------------------------------------------------------ paths
    def apply(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None):
        ctx = self._context(X, seed, clients, n)
        q, draws = self._draws(ctx)
        out = torch.zeros_like(X)
        bits = torch.zeros(ctx.rows, dtype=torch.int64)
        for _, r, seed_t in draws:
            Y, b = self.inner.apply(X[r : r + 1], seed_t)
            out[r] += Y[0] * self._weight(q, ctx, r)
            bits[r] += b[0]
        return out, bits

    def encode(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None) -> list[bytes]:
        ctx = self._context(X, seed, clients, n)
        _, draws = self._draws(ctx)
        parts: list[list[bytes]] = [[] for _ in range(ctx.rows)]
        for _, r, seed_t in draws:
            parts[r].append(self.inner.encode(X[r : r + 1], seed_t)[0])
        return [b"".join(p) for p in parts]

    def _split(self, blobs: list[bytes], offsets: list[int], ctx: Context) -> list[tuple[int, int, int, int]]:
        """Every piece as (row, inner seed, start, end), in the order of t."""
        ends = list(offsets)
        pieces = []
        for _, r, seed_t in self._draws(ctx)[1]:
            one = Context(seed=seed_t, n=1, d=ctx.d, clients=torch.zeros(1, dtype=torch.int64),
                          dtype=ctx.dtype, device=ctx.device)
            w = piece_widths(self.inner, [blobs[r]], [ends[r]], one)[0]
            pieces.append((r, seed_t, ends[r], ends[r] + w))
            ends[r] += w
        return pieces

    def _piece_widths(self, blobs: list[bytes], offsets: list[int], ctx: Context) -> list[int]:
        widths = [0] * ctx.rows
        for r, _, a, b in self._split(blobs, offsets, ctx):
            widths[r] += b - a
        return widths

    def decode(self, payloads: list[bytes], seed: int, d: int, *, clients: Any = None, n: int | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        ctx = decode_context(self, payloads, seed, d, clients, n, dtype, device)
        q, _ = self._draws(ctx)
        pieces = self._split(list(payloads), [0] * ctx.rows, ctx)
        used = [0] * ctx.rows
        for r, _, _, b in pieces:
            used[r] = b
        for r, p in enumerate(payloads):
            if used[r] != len(p):
                raise PayloadError(
                    f"{self.name}: payload of row {r} (client {int(ctx.clients[r])}) has {len(p)} bytes but its "
                    f"draws take {used[r]}; it is truncated, over-long or not a message of this compressor/seed/d."
                )
        out = torch.zeros(ctx.rows, d, dtype=dtype, device=ctx.device)
        for r, seed_t, a, b in pieces:
            Y = self.inner.decode([payloads[r][a:b]], seed_t, d, dtype=dtype, device=device)
            out[r] += Y[0] * self._weight(q, ctx, r)
        return check_finite(self, out, dtype)

    # ------------------------------------------------------------------ theory
    def theory(self, n: int, d: int) -> CompressorTheory:
        q = self._q(n)
        t = self.inner.theory(1, d)
        bits_i = (self.tau * q * t.bits).tolist()
        extras: dict = {"weights": q.tolist(), "bits_per_client_expected": bits_i, "inner_omega": t.omega,
                        "bits_data_dependent": True}
        for key in ("exact_unbiased", "omega_is_bound"):  # the inner's limit-only claims carry over
            if t.extras.get(key) is False:
                extras[key] = False
        bits = self.tau * t.bits / n
        if t.kind not in _UNBIASED or t.omega is None or not math.isfinite(t.omega):
            extras["note"] = "ISCC needs an unbiased inner compressor with a finite omega"
            return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=bits, extras=extras)
        w = t.omega
        qmin = float(q.min())
        extras.update(WAB_A=(w + 1) / self.tau, WAB_B=1.0 / self.tau,
                      exact_mse="1/tau (sum_i (||a_i||^2 + V_i) / (n^2 q_i) - ||mean a||^2)")
        omega = float((((1 - q) + w) / (self.tau * q)).max())
        return CompressorTheory("combinatorial", omega=omega, delta=None, A=(w + 1) / (self.tau * n * qmin),
                                B=1.0 / self.tau, bits=bits, extras=extras)
