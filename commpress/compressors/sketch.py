"""Random Gaussian sketching: project onto a random k-dimensional subspace (Stich 2020; talk Example II)."""

from __future__ import annotations

import torch

from commpress._rng import generator, private_randn
from commpress.compressors._checks import check_choice, check_float_bits
from commpress.compressors._sparse import check_bool, check_k_for_d, check_k_params, resolve_k
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import ConfigError
from commpress.wire.fields import float_field

#: Largest number of Gaussian entries one call may draw for the sketch matrices (8 bytes each).
MAX_SKETCH_ENTRIES = 1 << 27


@register("sketch")
class Sketch(Compressor):
    r"""Gaussian sketch: send :math:`S^\top v`, reconstruct the orthogonal projection onto the range of S.

    .. math:: \mathcal C(v) = P_S v = S (S^\top S)^{-1} S^\top v \quad (\texttt{scaled=False}), \qquad
              \mathcal C(v) = \tfrac{d}{k} P_S v \quad (\texttt{scaled=True}),

    :math:`S \in \mathbb R^{d\times k}` with i.i.d. N(0, 1) entries, so its range is a uniform random
    k-dimensional subspace and :math:`\mathbb E P_S = \frac kd I`: exactly
    :math:`e(v) = (1 - k/d)\|v\|^2` (unscaled) and :math:`(d/k - 1)\|v\|^2` (scaled).
    The server computes :math:`P_S v = Q R^{-\top} (S^\top v)` from the QR factorisation S = QR.

    Class: unscaled -- contractive, :math:`\delta = k/d` exactly (:math:`\delta = \lambda_{\min}(\mathbb E P_S)`;
    the talk's :math:`1 - \|I - P_S\|^2` needs the expectation inside); scaled -- unbiased,
    :math:`\omega = d/k - 1`. Private S: AB(omega/n, 0). ``shared=True``: one S for all clients, so the
    compressor is linear and messages can be summed (the aggregate is :math:`P_S \bar x`); errors are
    then correlated, AB(omega, 0). k = d is exact up to the rounding of the message.
    Payload per client: the k numbers :math:`S^\top v` (float32, or float64 with ``float_bits=64``): 32k bits.
    Randomness: S, drawn as one ``(n, d, k)`` float64 ``torch.randn`` (row-major) from the private
    stream (tag ``"sketch/S"``), or one ``(d, k)`` from the shared stream when ``shared``.

    Cost: :math:`O(dk)` memory and Gaussian draws per client (all n clients are drawn, as for every
    private draw), :math:`O(dk^2)` for the QR at decode: meant for small d. A call that would draw
    more than 2^27 entries is refused with a :class:`~commpress.errors.ConfigError`; use
    ``shared=True``, a smaller k, or RandK (``randk`` with ``scaled=False`` is the coordinate sketch).

    Args:
        k: sketch size (``1 <= k <= d``, checked per call); or
        ratio: k = max(1, ceil(ratio d)). Default: ratio 0.1.
        scaled: False (default): :math:`P_S v`, contractive; True: :math:`\frac dk P_S v`, unbiased.
        shared: one S for all clients (summable).
        kind: ``"gaussian"`` (the only kind implemented).
        float_bits: 32 (default) or 64 bits per sketch coordinate.

    References:
        Stich, On communication compression for distributed optimization on heterogeneous data,
        2020; Huang, Chen, Yin, Yuan, NEOLITHIC, NeurIPS 2022 (talk), Example II of
        :math:`\mathcal C_\delta`.
    """

    def __init__(self, k: int | None = None, ratio: float | None = None, scaled: bool = False,
                 shared: bool = False, kind: str = "gaussian", float_bits: int = 32) -> None:
        self.k, self.ratio = check_k_params(k, ratio, "Sketch")
        self.scaled = check_bool("scaled", scaled, "Sketch")
        self.shared = check_bool("shared", shared, "Sketch")
        self.kind = check_choice("kind", kind, "Sketch", ("gaussian",))
        self.float_bits = check_float_bits(float_bits, "Sketch")
        self.summable = self.shared  # linear in v with one S for everybody

    def params(self) -> dict:
        p: dict = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**p, "scaled": self.scaled, "shared": self.shared, "kind": self.kind, "float_bits": self.float_bits}

    def k_for(self, d: int) -> int:
        """The sketch size used at dimension d."""
        return resolve_k(self.k, self.ratio, d, 0.1, "ceil")

    def _sketch(self, ctx: Context) -> torch.Tensor:
        """S: ``(rows, d, k)`` (``(1, d, k)`` if shared), float64 on the CPU."""
        k = self.k_for(ctx.d)
        if self.shared:
            return torch.randn(1, ctx.d, k, generator=generator(ctx.seed, "sketch/S", -1), dtype=torch.float64)
        return private_randn(ctx.seed, "sketch/S", ctx.n, (ctx.d, k), None if ctx.is_full else ctx.clients)

    # ------------------------------------------------------------------ hooks
    def _check_shape(self, ctx: Context) -> None:
        k = self.k_for(ctx.d)
        check_k_for_d(k, ctx.d, "Sketch")
        entries = (1 if self.shared else ctx.n) * ctx.d * k
        if entries > MAX_SKETCH_ENTRIES:
            raise ConfigError(
                f"Sketch would draw {entries} Gaussian entries (n={ctx.n}, d={ctx.d}, k={k}; O(n d k) memory, "
                f"8 bytes each), more than {MAX_SKETCH_ENTRIES}. Use shared=True, a smaller k, or "
                "'randk' (scaled=False is the coordinate sketch)."
            )

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout([float_field("values", self.float_bits, self.k_for(ctx.d))], ctx.rows)

    # Row by row: a batched matmul or factorisation rounds a row differently depending on which
    # other rows share the batch, and a client's message must not depend on who else is encoded.
    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        S = self._sketch(ctx).to(X.device)
        X64 = X.to(torch.float64)
        y = torch.stack([X64[i] @ S[0 if self.shared else i] for i in range(ctx.rows)])  # (rows, k) = S^T v
        return {"values": y.to(torch.float32 if self.float_bits == 32 else torch.float64)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        S = self._sketch(ctx).to(ctx.device)
        y = message["values"].to(device=ctx.device, dtype=torch.float64)
        solvers = [self._projector(S[j]) for j in range(S.shape[0])]
        out = torch.stack([solvers[0 if self.shared else i](y[i]) for i in range(ctx.rows)])
        if self.scaled:
            out = out * (ctx.d / self.k_for(ctx.d))
        return out.to(ctx.dtype)

    @staticmethod
    def _projector(S: torch.Tensor):
        r"""For one ``(d, k)`` sketch, the map :math:`S^T v \mapsto P_S v = S (S^T S)^{-1} S^T v`."""
        d, k = S.shape
        if 2 * k <= d:
            # A Cholesky solve with the k x k Gram matrix: a tall Gaussian S (k <= d/2) is well
            # conditioned, and this is ~10x cheaper than a QR.
            L = torch.linalg.cholesky(S.T @ S)
            return lambda y: S @ torch.cholesky_solve(y[:, None], L)[:, 0]
        Q, R = torch.linalg.qr(S)  # nearly square S: S = QR, P_S v = Q R^{-T} S^T v (no squared condition number)
        return lambda y: Q @ torch.linalg.solve_triangular(R.T, y[:, None], upper=False)[:, 0]

    # ------------------------------------------------------------------ theory
    def theory(self, n: int, d: int) -> CompressorTheory:
        k = self.k_for(d)
        bits = padded_bits(self.float_bits * k)
        extras = {"k": k, "shared": self.shared}
        if self.scaled:
            omega = d / k - 1
            A = omega if self.shared else omega / n
            return CompressorTheory("unbiased", omega=omega, delta=None, A=A, B=0.0, bits=bits, extras=extras)
        return CompressorTheory("contractive", omega=None, delta=k / d, A=None, B=None, bits=bits, extras=extras)
