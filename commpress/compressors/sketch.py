r"""Random sketching: send :math:`S^\top v` for a random :math:`S \in \mathbb R^{d \times k}`, reconstruct
(approximately) the projection onto its range (Stich 2020; talk Example II).

Two kinds of S: the subsampled randomized Hadamard transform (default; Ailon and Chazelle 2006,
Tropp 2011), which costs :math:`O(d \log d)` per client and no memory beyond the batch, and a dense
Gaussian matrix (:math:`O(dk)` memory and draws per client, for small d).
"""

from __future__ import annotations

import math

import torch

from commpress._rng import _smallest_keys_mask, generator, private_randn, private_subset_mask, shared_words
from commpress.compressors._checks import check_choice, check_float_bits
from commpress.compressors._hadamard import fwht
from commpress.compressors._rotation import Rotation, padded_dim, rademacher
from commpress.compressors._sparse import check_bool, check_k_for_d, check_k_params, resolve_k
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout
from commpress.compressors.registry import register
from commpress.errors import ConfigError
from commpress.wire.fields import float_field

#: Largest number of Gaussian entries one ``kind="gaussian"`` call may draw for the sketch matrices
#: (8 bytes each). The SRHT draws O(n d) numbers and has no such limit.
MAX_SKETCH_ENTRIES = 1 << 27

_SIGNS, _SUBSET = "sketch/signs", "sketch/subset"  # the SRHT's stream tags


def srht_constants(d: int, k: int) -> tuple[float, float]:
    r"""``(omega, delta)`` of the SRHT sketch at dimension d with k rows (see :class:`Sketch`).

    With :math:`d' = 2^{\lceil\log_2 d\rceil}` and :math:`\rho = k/d'`:
    :math:`\omega = \frac{(d-1)(d'-k)}{k(d'-1)}` (scaled) and
    :math:`\delta = \rho\,(2 - \rho(1+\omega))` (unscaled); :math:`\omega = d/k - 1`,
    :math:`\delta = k/d` when d is a power of two. Both are exact: the errors are identities in v.
    """
    dp = padded_dim(d)
    if dp == 1:
        return 0.0, 1.0
    omega = (d - 1) * (dp - k) / (k * (dp - 1))
    rho = k / dp
    return omega, rho * (2.0 - rho * (1.0 + omega))


@register("sketch")
class Sketch(Compressor):
    r"""Random sketch: send the k numbers :math:`S^\top v`, reconstruct the projection onto the range of S.

    **SRHT** (``kind="srht"``, default). Pad v with zeros to :math:`v' \in \mathbb R^{d'}`,
    :math:`d' = 2^{\lceil\log_2 d\rceil}`, and send

    .. math:: y = S^\top v = \sqrt{d'/k}\; P H D v', \qquad
              \mathcal C(v) = \big[D H^\top P^\top P H D v'\big]_{1..d}
              = \sqrt{k/d'}\,\big[D H^\top P^\top y\big]_{1..d} \quad (\texttt{scaled=False}),
              \qquad \mathcal C(v) = \tfrac{d'}{k}\big[\dots\big]_{1..d} \quad (\texttt{scaled=True}),

    with :math:`D = \operatorname{diag}(\varepsilon)` Rademacher signs, H the orthonormal
    Walsh-Hadamard matrix :math:`H_{d'}/\sqrt{d'}` (Sylvester order) and P the :math:`k \times d'`
    selection of a uniformly random k-subset of the transformed coordinates, without replacement
    (Ailon and Chazelle 2006; Tropp 2011, "Improved analysis of the subsampled randomized Hadamard
    transform"). Since HD is orthogonal, :math:`Q = D H^\top P^\top P H D` is the orthogonal
    projection onto the range of :math:`S' = D H^\top P^\top` in :math:`\mathbb R^{d'}`; for
    :math:`d = d'` the output is the projection :math:`P_S v` exactly. Cost per client: two fast
    transforms of length d' (:math:`O(d'\log d')`) and d'/32 random words.

    *Constants (derived, exact for every v).* Over the subset, :math:`\mathbb E[P^\top P] = \rho I`,
    :math:`\rho = k/d'`, so :math:`\mathbb E\,Q = \rho I` for any signs: the scaled sketch is unbiased.
    With :math:`u = HDv'`, :math:`\Pr[j, l \in \text{subset}] = c = \frac{k(k-1)}{d'(d'-1)}` for
    :math:`j \ne l`, :math:`H_{ja}^2 = 1/d'` and :math:`\sum_j H_{ja} u_j = \varepsilon_a v_a`:

    .. math:: \mathbb E\,\|[Qv']_{1..d}\|^2 = \sum_{a \le d}\Big[(\rho - c)\sum_j H_{ja}^2 u_j^2 + c\,v_a^2\Big]
              = \Big[\tfrac{d}{d'}(\rho - c) + c\Big]\|v\|^2,

    hence, scaled, :math:`\mathbb E\|\mathcal C(v) - v\|^2 = \omega\|v\|^2` with
    :math:`\omega = \frac{(d-1)(d'-k)}{k(d'-1)}` (:math:`= d/k - 1` when :math:`d = d'`; in general
    between :math:`d/k - 1` and :math:`d'/k - 1`), and, unscaled,
    :math:`e(v) = (1 - 2\rho + \rho^2(1+\omega))\|v\|^2`, i.e. contractive with
    :math:`\delta = \rho(2 - \rho(1+\omega))` (:math:`= k/d` when :math:`d = d'`; when :math:`d < d'`
    the cropped :math:`[Qv']_{1..d}` is not a projection of :math:`\mathbb R^d` and
    :math:`\delta > k/d'`). The signs D do not enter these expectations; they make each draw
    concentrate (:math:`\|S^\top v\| \approx \|v\|` for every v, the JL property), where a plain
    subsampled Hadamard would lose a flat vector entirely with probability :math:`1 - \rho`.
    ``srht_constants(d, k)`` in this module returns both. k = d is exact when d is a power of two.

    **Gaussian** (``kind="gaussian"``): :math:`S \in \mathbb R^{d\times k}` with i.i.d. N(0, 1)
    entries, :math:`\mathcal C(v) = P_S v = S (S^\top S)^{-1} S^\top v` (or :math:`\frac dk P_S v`);
    its range is a uniform k-dimensional subspace, :math:`\mathbb E P_S = \frac kd I`: exactly
    :math:`e(v) = (1 - k/d)\|v\|^2` (unscaled, :math:`\delta = k/d`) and :math:`(d/k - 1)\|v\|^2`
    (scaled, :math:`\omega = d/k - 1`). The server computes :math:`P_S v` by a Cholesky solve
    with :math:`S^\top S` (k <= d/2) or from the QR factorisation S = QR. k = d is exact up to the
    rounding of the message. Cost: :math:`O(dk)` memory and Gaussian draws per client (all n
    clients are drawn), :math:`O(dk^2)` at decode; a call that would draw more than 2^27 entries
    is refused with a :class:`~commpress.errors.ConfigError`.

    Class (:math:`\delta = \lambda_{\min}(\mathbb E P_S)`-type constants: the talk's
    :math:`1 - \|I - P_S\|^2` needs the expectation inside): unscaled -- contractive; scaled --
    unbiased. Private S: AB(omega/n, 0). ``shared=True``: one S for all clients, so the compressor
    is linear and messages can be summed (the aggregate is :math:`\mathcal C(\bar x)`); errors are
    then correlated, AB(omega, 0).

    Payload per client: the k numbers :math:`S^\top v` (float32, or float64 with ``float_bits=64``):
    32k bits; S is regenerated from the seed (0 bits). Randomness (a pure function of the seed,
    the tag, the client and the coordinate, drawn on the data's device for the rows asked only):
    SRHT signs -- bit ``m % 64`` of the client's private word ``m // 64`` (tag ``"sketch/signs"``,
    as DRIVE's randomized Hadamard); SRHT subset -- :func:`commpress._rng.private_subset_mask`
    over the d' transformed coordinates (tag ``"sketch/subset"``: the k smallest of the client's
    d' 32-bit keys); with ``shared`` both come from the shared words of the round. Gaussian S: one
    ``(n, d, k)`` float64 ``torch.randn`` (row-major) from the private stream (tag ``"sketch/S"``),
    or one ``(d, k)`` from the shared stream.

    Measured (SRHT, one CPU thread, ``(16, 2^20)`` float32, k = d/10, on a loaded 2-core VM):
    ``apply`` 0.44-0.54 s of CPU time, 11-12x ``X.clone()`` (two fast transforms ~0.1 s each, the
    subset ~0.1 s, the signs ~0.05 s); the dense Gaussian sketch would need 1.8e12 entries there.

    Args:
        k: sketch size (``1 <= k <= d``, checked per call); or
        ratio: k = max(1, ceil(ratio d)). Default: ratio 0.1.
        scaled: False (default): contractive; True: times d'/k (SRHT) or d/k (Gaussian), unbiased.
        shared: one S for all clients (summable).
        kind: ``"srht"`` (default) or ``"gaussian"``.
        float_bits: 32 (default) or 64 bits per sketch coordinate.

    References:
        Ailon, Chazelle, Approximate nearest neighbors and the fast Johnson-Lindenstrauss
        transform, STOC 2006; Tropp, Improved analysis of the subsampled randomized Hadamard
        transform, Adv. Adapt. Data Anal. 2011; Stich, On communication compression for
        distributed optimization on heterogeneous data, 2020; Huang, Chen, Yin, Yuan, NEOLITHIC,
        NeurIPS 2022 (talk), Example II of :math:`\mathcal C_\delta`.
    """

    def __init__(self, k: int | None = None, ratio: float | None = None, scaled: bool = False,
                 shared: bool = False, kind: str = "srht", float_bits: int = 32) -> None:
        self.k, self.ratio = check_k_params(k, ratio, "Sketch")
        self.scaled = check_bool("scaled", scaled, "Sketch")
        self.shared = check_bool("shared", shared, "Sketch")
        self.kind = check_choice("kind", kind, "Sketch", ("srht", "gaussian"))
        self.float_bits = check_float_bits(float_bits, "Sketch")
        self.summable = self.shared  # linear in v with one S for everybody
        self.correlated = self.shared  # one S ties the clients' errors together

    def params(self) -> dict:
        p: dict = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**p, "scaled": self.scaled, "shared": self.shared, "kind": self.kind, "float_bits": self.float_bits}

    def k_for(self, d: int) -> int:
        """The sketch size used at dimension d."""
        return resolve_k(self.k, self.ratio, d, 0.1, "ceil")

    # ------------------------------------------------------------------ hooks
    def _check_shape(self, ctx: Context) -> None:
        k = self.k_for(ctx.d)
        check_k_for_d(k, ctx.d, "Sketch")
        if self.kind != "gaussian":
            return
        entries = (1 if self.shared else ctx.n) * ctx.d * k
        if entries > MAX_SKETCH_ENTRIES:
            raise ConfigError(
                f"Sketch(kind='gaussian') would draw {entries} Gaussian entries (n={ctx.n}, d={ctx.d}, k={k}; "
                f"O(n d k) memory, 8 bytes each), more than {MAX_SKETCH_ENTRIES}. Use kind='srht' (the default), "
                "shared=True or a smaller k."
            )

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout([float_field("values", self.float_bits, self.k_for(ctx.d))], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        wire = torch.float32 if self.float_bits == 32 else torch.float64
        if self.kind == "srht":
            return {"values": self._srht_encode(X, ctx).to(wire)}
        return {"values": self._gaussian_encode(X, ctx).to(wire)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        if self.kind == "srht":
            return self._srht_decode(message["values"], ctx)
        return self._gaussian_decode(message["values"], ctx)

    # ------------------------------------------------------------------ SRHT
    def _rotation(self, ctx: Context, dtype: torch.dtype) -> Rotation:
        """:math:`v \\mapsto H_{d'} D v'` (unnormalised) and its inverse, signs from ``"sketch/signs"``."""
        return Rotation("hadamard", ctx.seed, _SIGNS, ctx.n, ctx.d, None if ctx.is_full else ctx.clients,
                        self.shared, dtype, ctx.device)

    def _kept(self, ctx: Context) -> torch.Tensor:
        """Flat positions in the ``(rows, d')`` transformed batch of every row's k kept coordinates,
        row by row, ascending: ``(rows * k,)`` int64 on ``ctx.device``.

        Shared by the hooks of one call (encode and decode see the same ``ctx`` object), so
        ``apply`` draws the subset once.
        """
        cached = getattr(self, "_kept_cache", None)
        if cached is not None and cached[0] is ctx:
            return cached[1]
        dp, k = padded_dim(ctx.d), self.k_for(ctx.d)
        if self.shared:
            if k >= dp:
                mask = torch.ones(1, dp, dtype=torch.bool, device=ctx.device)
            else:
                keys = shared_words(ctx.seed, _SUBSET, (dp + 1) // 2, ctx.device).view(torch.int32)[:dp]
                mask = _smallest_keys_mask(keys.unsqueeze(0), k)
            cols = torch.nonzero(mask[0], as_tuple=True)[0]
            rows = torch.arange(ctx.rows, dtype=torch.int64, device=ctx.device).unsqueeze(1) * dp
            flat = (rows + cols.unsqueeze(0)).reshape(-1)
        else:
            mask = private_subset_mask(ctx.seed, _SUBSET, ctx.n, dp, k,
                                       None if ctx.is_full else ctx.clients, ctx.device)
            flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        self._kept_cache = (ctx, flat)
        return flat

    def _srht_encode(self, X: torch.Tensor, ctx: Context) -> torch.Tensor:
        """:math:`y = \\sqrt{d'/k}\\, P H D v' = P (H_{d'} D v') / \\sqrt k` of every row: ``(rows, k)``."""
        k = self.k_for(ctx.d)
        Y, _ = self._rotation(ctx, X.dtype).forward_raw(X)
        y = Y.view(-1)[self._kept(ctx)].view(ctx.rows, k)
        return y.mul_(1.0 / math.sqrt(k))

    def _srht_decode(self, values: torch.Tensor, ctx: Context) -> torch.Tensor:
        """:math:`\\sqrt{k/d'}\\,[D H^\\top P^\\top y]_{1..d} = \\frac{\\sqrt k}{d'} [D H_{d'} P^\\top y]_{1..d}`
        (times d'/k when scaled)."""
        dp, k = padded_dim(ctx.d), self.k_for(ctx.d)
        gain = 1.0 / math.sqrt(k) if self.scaled else math.sqrt(k) / dp
        V = torch.zeros(ctx.rows, dp, dtype=ctx.dtype, device=ctx.device)
        y = values.to(device=ctx.device, dtype=ctx.dtype).reshape(-1)
        V.view(-1)[self._kept(ctx)] = y * gain
        return self._rotation(ctx, ctx.dtype).inverse_raw(V)

    def _apply_fused(self, X: torch.Tensor, ctx: Context) -> torch.Tensor | None:
        """``decode(encode(X))`` for the SRHT, bit for bit, in three ``(rows, d')`` buffers drawn once:
        the signs are drawn once (not again at decode) and the transformed batch is reused as the
        decoder's input (no fresh zeros). None (the generic path) for the Gaussian kind, or when the
        message would overflow (the encoder then raises)."""
        if self.kind != "srht":
            return None
        dp, k, d = padded_dim(ctx.d), self.k_for(ctx.d), ctx.d
        out = None if self.shared else torch.empty(ctx.rows, dp, dtype=X.dtype, device=X.device)
        signs = rademacher(ctx.seed, _SIGNS, ctx.n, dp, None if ctx.is_full else ctx.clients, shared=self.shared,
                           dtype=X.dtype, device=X.device, out=out)  # Rotation's signs of _rotation(ctx)
        # forward, as Rotation.forward_raw: buf = signs * x' (zero-padded), then H_{d'} in place
        buf = torch.empty(ctx.rows, dp, dtype=X.dtype, device=X.device)
        torch.mul(signs[:, :d], X, out=buf[:, :d])
        if dp > d:
            buf[:, d:].zero_()
        spare = torch.empty_like(buf)
        Y = fwht(buf, inplace=True, scratch=spare)
        spare = buf if Y is spare else spare
        flat = self._kept(ctx)
        wire = torch.float32 if self.float_bits == 32 else torch.float64
        y = Y.view(-1)[flat].view(ctx.rows, k).mul_(1.0 / math.sqrt(k)).to(wire)  # as _srht_encode
        if not bool(torch.isfinite(y.sum())) and not bool(torch.isfinite(y).all()):
            return None
        # inverse, as _srht_decode and Rotation.inverse_raw, in the buffers of the forward pass
        gain = 1.0 / math.sqrt(k) if self.scaled else math.sqrt(k) / dp
        Y.zero_()
        Y.view(-1)[flat] = y.to(ctx.dtype).reshape(-1) * gain
        Z = fwht(Y, inplace=True, scratch=spare)
        Z.mul_(signs)
        return Z if dp == d else Z[:, :d].contiguous()

    # ------------------------------------------------------------------ Gaussian
    def _sketch(self, ctx: Context) -> torch.Tensor:
        """S: ``(rows, d, k)`` (``(1, d, k)`` if shared), float64 on the CPU."""
        k = self.k_for(ctx.d)
        if self.shared:
            return torch.randn(1, ctx.d, k, generator=generator(ctx.seed, "sketch/S", -1), dtype=torch.float64)
        return private_randn(ctx.seed, "sketch/S", ctx.n, (ctx.d, k), None if ctx.is_full else ctx.clients)

    # Row by row: a batched matmul or factorisation rounds a row differently depending on which
    # other rows share the batch, and a client's message must not depend on who else is encoded.
    def _gaussian_encode(self, X: torch.Tensor, ctx: Context) -> torch.Tensor:
        S = self._sketch(ctx).to(X.device)
        X64 = X.to(torch.float64)
        return torch.stack([X64[i] @ S[0 if self.shared else i] for i in range(ctx.rows)])  # (rows, k) = S^T v

    def _gaussian_decode(self, values: torch.Tensor, ctx: Context) -> torch.Tensor:
        S = self._sketch(ctx).to(ctx.device)
        y = values.to(device=ctx.device, dtype=torch.float64)
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
        extras = {"k": k, "shared": self.shared, "kind": self.kind}
        if self.kind == "srht":
            omega, delta = srht_constants(d, k)
            extras["padded_d"] = padded_dim(d)
        else:
            omega, delta = d / k - 1, k / d
        if self.scaled:
            A = omega if self.shared else omega / n
            return CompressorTheory("unbiased", omega=omega, delta=None, A=A, B=0.0, bits=bits, extras=extras)
        return CompressorTheory("contractive", omega=None, delta=delta, A=None, B=None, bits=bits, extras=extras)
