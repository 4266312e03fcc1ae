"""The biased compressors of Beznosikov, Horváth, Richtárik, Safaryan, *On biased compression for distributed learning* (JMLR 2023).

BC's classes, for a compressor :math:`\\mathcal C`:

- :math:`\\mathbb B^1(\\alpha, \\beta)`: :math:`\\alpha\\|x\\|^2 \\le \\mathbb E\\|\\mathcal C(x)\\|^2 \\le \\beta\\langle\\mathbb E\\mathcal C(x), x\\rangle`;
- :math:`\\mathbb B^2(\\gamma, \\beta)`: :math:`\\max\\{\\gamma\\|x\\|^2, \\frac1\\beta\\mathbb E\\|\\mathcal C(x)\\|^2\\} \\le \\langle\\mathbb E\\mathcal C(x), x\\rangle`;
- :math:`\\mathbb B^3(\\delta)`, :math:`\\delta \\ge 1`: :math:`\\mathbb E\\|\\mathcal C(x) - x\\|^2 \\le (1 - \\frac1\\delta)\\|x\\|^2`, i.e. the
  library's contractive class :math:`\\mathbb B(1/\\delta)`.

Every compressor here declares the library's contraction constant ``delta`` (``= 1/delta_BC``) and
BC's constants in ``theory().extras`` (``"B1"``, ``"B2"``, ``"B3"``).
"""

from __future__ import annotations

import math

import torch

from commpress._rng import private_rand, row_counts
from commpress.compressors._checks import check_choice, check_float, check_float_bits
from commpress.compressors._sparse import (
    check_k_for_d, check_k_params, index_bits, index_fields, index_message, index_width, resolve_k, scatter_kept,
)
from commpress.compressors.base import (
    Compressor, CompressorTheory, Context, Layout, Message, padded_bits, uniform_layout,
)
from commpress.compressors.registry import make, register
from commpress.compressors.topk import topk_mask
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire import UINT, Field
from commpress.wire.fields import float_field

__all__ = ["BiasedSparsification", "AdaptiveSparsification", "BiasedRounding", "TopKQuantized"]


def _bc_extras(name: str, d: int, **kw) -> dict:
    c = bc_classes(name, d, **kw)
    return {"B1": c["B1"], "B2": c["B2"], "B3": c["B3"]}



# ----------------------------------------------------------------------------- class constants
def biased_rounding_delta(base: float) -> float:
    r"""Contraction :math:`\delta = 4b/(b+1)^2` of deterministic rounding to the nearest :math:`\pm b^k`
    (worst case at the midpoint of :math:`[b^k, b^{k+1}]`: relative error :math:`(b-1)/(b+1)`)."""
    if base <= 1:
        raise ConfigError(f"biased rounding needs a base b > 1; got b={base}.")
    return 4.0 * base / (base + 1.0) ** 2


def bc_classes(name: str, d: int, k: int | None = None, q: float | None = None, zeta: float | None = None,
               base: float | None = None) -> dict:
    r"""BC's class constants of a compressor [derived]: ``{"B1": (alpha, beta), "B2": (gamma, beta),
    "B3": delta_bc, "delta": library contraction}``.

    Names: ``topk`` (k), ``biased_sparsification`` (q = min keep probability), ``adaptive_sparsification``,
    ``topk_q`` (k and :math:`\zeta = \omega+1` of the unbiased quantiser; B3 after scaling by :math:`1/\zeta`),
    ``biased_rounding`` (base), ``randk`` (unbiased Rand-k, k; B3 after scaling by k/d).
    """
    if name == "topk":
        c = k / d
        return {"B1": (c, 1.0), "B2": (c, 1.0), "B3": d / k, "delta": c}
    if name == "biased_sparsification":
        return {"B1": (q, 1.0), "B2": (q, 1.0), "B3": 1.0 / q, "delta": q}
    if name == "adaptive_sparsification":
        return {"B1": (1.0 / d, 1.0), "B2": (1.0 / d, 1.0), "B3": float(d), "delta": 1.0 / d}
    if name == "topk_q":
        c = k / d
        return {"B1": (c, zeta), "B2": (c, zeta), "B3": zeta * d / k, "delta": c / zeta}
    if name == "biased_rounding":
        b = base
        return {"B1": (4.0 / (b + 1) ** 2, 2 * b / (b + 1)), "B2": (2.0 / (b + 1), 2 * b / (b + 1)),
                "B3": (b + 1) ** 2 / (4 * b), "delta": biased_rounding_delta(b)}
    if name == "randk":
        return {"B1": (1.0, d / k), "B2": (1.0, d / k), "B3": d / k, "delta": k / d}
    raise ConfigError(f"bc_classes knows topk, biased_sparsification, adaptive_sparsification, topk_q, "
                      f"biased_rounding, randk; got {name!r}.")


@register("biased_sparsification")
class BiasedSparsification(Compressor):
    r"""Biased random sparsification: keep each coordinate with probability p, no rescaling.

    .. math:: \mathcal C(x)_j = Z_j x_j, \qquad Z_j \sim \mathrm{Bernoulli}(p)\ \text{independent}.

    Class: :math:`\mathbb E\|\mathcal C(x) - x\|^2 = (1-p)\|x\|^2` exactly, so contractive with
    :math:`\delta = p`; BC: :math:`\mathbb B^1(p, 1)`, :math:`\mathbb B^2(p, 1)`, :math:`\mathbb B^3(1/p)`
    (:math:`q = \min_j p_j = p`). The unscaled counterpart of the unbiased Bernoulli sparsifier.
    Payload per client: a check byte (the number of kept coordinates mod 256, verified by the
    decoder) and the kept values (float32, or float64 with ``float_bits=64``): the mask
    is drawn from the client's private stream, which the decoder regenerates (0 bits). Bits:
    :math:`8 + 32\,|\{j: Z_j = 1\}|`, expected :math:`8 + 32pd` (data independent, seed dependent).
    Randomness: one private uniform per coordinate (tag ``"biased_sparsification/u"``, (n, d), row-major),
    :math:`Z_j = 1\{U_j < p\}`.

    Args:
        p: keep probability in (0, 1] (default 0.5).
        float_bits: 32 (default) or 64 bits per value.

    References:
        Beznosikov, Horváth, Richtárik, Safaryan, On biased compression for distributed learning,
        JMLR 2023 (arXiv:2002.12410), Sec. 3 (new biased compressors).
    """

    def __init__(self, p: float = 0.5, float_bits: int = 32) -> None:
        self.p = check_float("p", p, "BiasedSparsification", low=0.0, high=1.0, low_open=True,
                             hint=" p is the probability of keeping each coordinate.")
        self.float_bits = check_float_bits(float_bits, "BiasedSparsification")

    def params(self) -> dict:
        return {"p": self.p, "float_bits": self.float_bits}

    def _mask(self, ctx: Context) -> torch.Tensor:
        u = private_rand(ctx.seed, "biased_sparsification/u", ctx.n, (ctx.d,), None if ctx.is_full else ctx.clients,
                         dtype=torch.float64, device=ctx.device)
        return u < self.p

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        counts = row_counts(self._mask(ctx)).cpu()
        return [([Field("check", UINT, 8, 1), float_field("values", self.float_bits, c)], (counts == c).nonzero().flatten())
                for c in counts.unique().tolist()]

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        mask = self._mask(ctx)
        counts = row_counts(mask)
        slots = max(1, int(counts.max()))
        # the kept values of each row first (stable sort keeps their order), zero-padded
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :slots]
        values = X.gather(1, order) * (torch.arange(slots, device=X.device).unsqueeze(0) < counts.unsqueeze(1))
        return {"check": (counts % 256).unsqueeze(1).cpu(),
                "values": values.to(torch.float32 if self.float_bits == 32 else torch.float64)}

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        counts = row_counts(self._mask(ctx)).cpu()
        if not bool(torch.equal(message["check"][:, 0].cpu().to(torch.int64), counts % 256)):
            raise PayloadError(f"{self.name}: the count check byte does not match the seeded mask; the payload "
                               "belongs to another seed or client, or is corrupted.")

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        mask = self._mask(ctx)
        counts = row_counts(mask).to(ctx.device)
        values = message["values"].to(device=ctx.device, dtype=ctx.dtype)
        valid = torch.arange(values.shape[1], device=ctx.device).unsqueeze(0) < counts.unsqueeze(1)
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        return out.masked_scatter_(mask, values.masked_select(valid))

    def theory(self, n: int, d: int) -> CompressorTheory:
        extras = {"bits_data_dependent": True, "bits_note": "expected: 8 + 32 p d (the count is seeded)",
                  **_bc_extras("biased_sparsification", d, q=self.p)}
        return CompressorTheory("contractive", omega=None, delta=self.p, A=None, B=None,
                                bits=padded_bits(8 + self.float_bits * self.p * d), extras=extras)


@register("adaptive_sparsification")
class AdaptiveSparsification(Compressor):
    r"""Adaptive random sparsification: send one coordinate, drawn with probability proportional to :math:`|x_j|`.

    .. math:: \mathcal C(x) = x_j e_j \quad\text{with probability}\quad \frac{|x_j|}{\|x\|_1} .

    Class: :math:`\mathbb E\|\mathcal C(x) - x\|^2 = \|x\|^2 - \sum_j |x_j|^3/\|x\|_1 \le (1 - \frac1d)\|x\|^2`
    (Cauchy-Schwarz twice: :math:`\sum|x_j|^3\sum|x_j| \ge \|x\|^4` and :math:`\|x\|_1^2 \le d\|x\|^2`), so
    contractive with :math:`\delta = 1/d` (equality for equal magnitudes); BC: :math:`\mathbb B^1(\frac1d, 1)`,
    :math:`\mathbb B^2(\frac1d, 1)`, :math:`\mathbb B^3(d)`.
    Payload per client: the index (:math:`\lceil\log_2 d\rceil` bits) and the value (float32, or float64).
    Randomness: one private uniform per client (tag ``"adaptive_sparsification/u"``); the index is
    the first j with :math:`\sum_{i\le j}|x_i| > U\|x\|_1` (inverse CDF; zeros are never drawn).

    Args:
        float_bits: 32 (default) or 64 bits for the value.

    References:
        Beznosikov, Horváth, Richtárik, Safaryan, On biased compression for distributed learning,
        JMLR 2023 (arXiv:2002.12410), Sec. 3 (new biased compressors).
    """

    def __init__(self, float_bits: int = 32) -> None:
        self.float_bits = check_float_bits(float_bits, "AdaptiveSparsification")

    def params(self) -> dict:
        return {"float_bits": self.float_bits}

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout([Field("index", UINT, index_width(ctx.d), 1), float_field("value", self.float_bits, 1)],
                              ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        cum = torch.cumsum(X.abs().to(torch.float64), dim=1)
        u = private_rand(ctx.seed, "adaptive_sparsification/u", ctx.n, (1,), None if ctx.is_full else ctx.clients,
                         dtype=torch.float64, device=X.device)
        idx = (cum <= u * cum[:, -1:]).sum(dim=1, keepdim=True).clamp_(max=ctx.d - 1)
        value = X.gather(1, idx)
        return {"index": idx, "value": value.to(torch.float32 if self.float_bits == 32 else torch.float64)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        idx = message["index"].to(device=ctx.device, dtype=torch.int64)
        if bool((idx >= ctx.d).any()):
            raise PayloadError(f"{self.name}: an index is >= d={ctx.d}; the payload is corrupted.")
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        return out.scatter_(1, idx, message["value"].to(device=ctx.device, dtype=ctx.dtype))

    def theory(self, n: int, d: int) -> CompressorTheory:
        return CompressorTheory("contractive", omega=None, delta=1.0 / d, A=None, B=None,
                                bits=padded_bits(index_width(d) + self.float_bits),
                                extras=_bc_extras("adaptive_sparsification", d))


@register("biased_rounding")
class BiasedRounding(Compressor):
    r"""General biased rounding: every coordinate rounded to the nearest signed power :math:`\pm b^k`.

    .. math:: \mathcal C(x)_j = \operatorname{sign}(x_j)\,\arg\min_{v \in \{b^k,\,b^{k+1}\}} \big|\,|x_j| - v\big|,
              \qquad b^k \le |x_j| < b^{k+1}

    (ties go up; :math:`\mathcal C(0) = 0`). Deterministic. Class: the worst relative error is at the
    midpoint of :math:`[b^k, b^{k+1}]`, :math:`(b-1)/(b+1)`, so contractive with
    :math:`\delta = 4b/(b+1)^2` (:math:`8/9` for b = 2); BC: :math:`\mathbb B^1(\frac4{(b+1)^2}, \frac{2b}{b+1})`,
    :math:`\mathbb B^2(\frac2{b+1}, \frac{2b}{b+1})`, :math:`\mathbb B^3(\frac{(b+1)^2}{4b})`.
    Payload per client: per coordinate a sign bit (1 = negative) and an exponent code
    (0 = zero, c = 1, 2, ... for :math:`b^{k_{\min} + c - 1}`) of :math:`\lceil\log_2(k_{\max} - k_{\min} + 2)\rceil`
    bits, the exponents covering float32's normal range: :math:`b^{k_{\min}} \ge 2^{-126}`,
    :math:`b^{k_{\max}} \le 2^{127}` (9 bits per coordinate for b = 2, like natural compression).
    Domain: :math:`|x_j| < b^{k_{\min}}` goes to the nearer of 0 and :math:`b^{k_{\min}}` (outside the class bound);
    :math:`|x_j| > b^{k_{\max}}` raises :class:`~commpress.InputError`. No randomness.

    Args:
        base: b > 1 (default 2).

    References:
        Beznosikov, Horváth, Richtárik, Safaryan, On biased compression for distributed learning,
        JMLR 2023 (arXiv:2002.12410), Sec. 3 (general biased rounding).
    """

    deterministic = True

    def __init__(self, base: float = 2.0) -> None:
        self.base = check_float("base", base, "BiasedRounding", low=1.0, low_open=True, finite=True,
                                hint=" base is b of the grid {±b^k}.")
        if self.base < 1.0 + 1e-6:
            raise ConfigError(f"BiasedRounding needs base >= 1 + 1e-6 (a finite grid); got base={base}.")
        lb = math.log(self.base)
        self.k_min = math.ceil(-126 * math.log(2) / lb - 1e-9)
        self.k_max = math.floor(127 * math.log(2) / lb + 1e-9)
        while self.base ** self.k_min < 2.0**-126:
            self.k_min += 1
        while self.base ** self.k_max > 2.0**127:
            self.k_max -= 1
        self.width = (self.k_max - self.k_min + 1).bit_length()

    def params(self) -> dict:
        return {"base": self.base}

    def _powers(self, device) -> torch.Tensor:
        k = torch.arange(self.k_min, self.k_max + 1, dtype=torch.float64)
        return torch.pow(torch.tensor(self.base, dtype=torch.float64), k).to(device)

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        return uniform_layout([Field("sign", UINT, 1, ctx.d), Field("exponent", UINT, self.width, ctx.d)], ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        P = self._powers(X.device)
        A = X.abs().to(torch.float64)
        top = float(A.max())
        if top > float(P[-1]):
            raise InputError(f"biased_rounding with base {self.base} handles |x| <= b^{self.k_max} = {float(P[-1]):.6g}; "
                             f"got max |x| = {top:.6g}. Rescale the input.")
        i = torch.searchsorted(P, A.contiguous(), right=True) - 1  # P[i] <= |x| < P[i+1]; -1 below P[0]
        low = torch.where(i >= 0, P[i.clamp(min=0)], torch.zeros_like(A))
        high = P[(i + 1).clamp(max=P.numel() - 1)]
        up = (A - low >= high - A) & (i < P.numel() - 1)
        code = torch.where(up, i + 2, i + 1)  # code c -> P[c - 1]; code 0 -> 0
        code = torch.where(A == 0, torch.zeros_like(code), code)
        return {"sign": (X < 0).view(torch.uint8), "exponent": code}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        P = torch.cat([torch.zeros(1, dtype=torch.float64), self._powers("cpu")]).to(ctx.device)
        code = message["exponent"].to(device=ctx.device, dtype=torch.int64)
        sign = 1.0 - 2.0 * message["sign"].to(device=ctx.device, dtype=torch.float64)
        return (P[code] * sign).to(ctx.dtype)

    def _check_message(self, message: Message, ctx: Context) -> None:
        super()._check_message(message, ctx)
        if bool((message["exponent"] > self.k_max - self.k_min + 1).any()):
            raise PayloadError(f"{self.name}: an exponent code above the grid; the payload is corrupted.")

    def theory(self, n: int, d: int) -> CompressorTheory:
        return CompressorTheory("contractive", omega=None, delta=biased_rounding_delta(self.base), A=None, B=None,
                                bits=padded_bits((1 + self.width) * d),
                                extras={"k_range": (self.k_min, self.k_max), **_bc_extras("biased_rounding", d, base=self.base)})


#: Unbiased quantisers Top-k may be followed by (one uniform layout, no header: their message is fixed-size).
QUANTIZERS = ("natural", "natural_dithering", "dithering", "terngrad")


@register("topk_q")
class TopKQuantized(Compressor):
    r"""Top-k followed by an unbiased quantiser :math:`\mathcal Q \in \mathbb U(\zeta - 1)` of the k kept values, scaled by :math:`1/\zeta`.

    .. math:: \mathcal C(x) = \frac1\zeta\,\mathcal Q\big(\mathrm{Top}_k(x)\big), \qquad \zeta = 1 + \omega_{\mathcal Q}(k).

    Class [derived]: :math:`\mathcal Q\circ\mathrm{Top}_k \in \mathbb B^1(\frac kd, \zeta) \cap \mathbb B^2(\frac kd, \zeta)`
    (:math:`\langle\mathbb E\mathcal C(x), x\rangle = \|\mathrm{Top}_k(x)\|^2 \ge \frac kd\|x\|^2`,
    :math:`\mathbb E\|\mathcal Q(y)\|^2 \le \zeta\|y\|^2`), hence the scaled compressor is in :math:`\mathbb B^3(\zeta d/k)`:
    contractive with :math:`\delta = k/(\zeta d)`. With ``scaled=False`` the output is
    :math:`\mathcal Q(\mathrm{Top}_k(x))`: kind ``"biased"`` (BC's :math:`\mathbb B^1, \mathbb B^2` constants in extras).
    Payload per client: the index set of Top-k (k indices of :math:`\lceil\log_2 d\rceil` bits or a d-bit bitmap)
    and :math:`\mathcal Q`'s message of the k-vector (fields prefixed ``q_``).
    Randomness: :math:`\mathcal Q`'s, drawn as for a k-dimensional input of the same client.

    Args:
        k, ratio: as TopK (default ratio 0.1).
        quantizer: one of ``natural`` (default, :math:`\zeta = 9/8`), ``natural_dithering``, ``dithering``, ``terngrad``.
        scaled: multiply by :math:`1/\zeta` (default True).

    References:
        Beznosikov, Horváth, Richtárik, Safaryan, On biased compression for distributed learning,
        JMLR 2023 (arXiv:2002.12410), Sec. 3 (Top-k combined with exponential dithering / natural compression).
    """

    def __init__(self, k: int | None = None, ratio: float | None = None, quantizer: str = "natural",
                 scaled: bool = True) -> None:
        self.k, self.ratio = check_k_params(k, ratio, "TopKQuantized")
        self.quantizer = check_choice("quantizer", quantizer, "TopKQuantized", QUANTIZERS)
        if not isinstance(scaled, bool):
            raise ConfigError(f"TopKQuantized needs scaled=True or False; got scaled={scaled!r}.")
        self.scaled = scaled
        self.Q = make(self.quantizer)

    def params(self) -> dict:
        p: dict = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**p, "quantizer": self.quantizer, "scaled": self.scaled}

    def k_for(self, d: int) -> int:
        return resolve_k(self.k, self.ratio, d, 0.1, "half_up")

    def zeta(self, n: int, d: int) -> float:
        """:math:`\\zeta = 1 + \\omega` of the quantiser at dimension k."""
        return 1.0 + float(self.Q.theory(n, self.k_for(d)).omega)

    def _check_shape(self, ctx: Context) -> None:
        check_k_for_d(self.k_for(ctx.d), ctx.d, "TopKQuantized")

    def _inner(self, ctx: Context) -> Context:
        return Context(seed=ctx.seed, n=ctx.n, d=self.k_for(ctx.d), clients=ctx.clients, dtype=ctx.dtype,
                       device=ctx.device)

    def _q_fields(self, ctx: Context) -> list[Field]:
        groups = self.Q.layout(self._inner(ctx), None)
        return [Field("q_" + f.name, f.kind, f.width, f.count) for f in groups[0][0]]

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        k = self.k_for(ctx.d)
        return uniform_layout(index_fields(k, ctx.d) + self._q_fields(ctx), ctx.rows)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        k = self.k_for(ctx.d)
        mask = topk_mask(X, k)
        flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        idx = flat.view(ctx.rows, k) - (torch.arange(ctx.rows, device=flat.device) * ctx.d).unsqueeze(1)
        inner = self.Q.encode_message(X.gather(1, idx), self._inner(ctx))
        message = {"q_" + name: v for name, v in inner.items()}
        message.update(index_message(mask.cpu(), k, idx.cpu()))
        return message

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        inner_ctx = self._inner(ctx)
        inner = {name[2:]: v for name, v in message.items() if name.startswith("q_")}
        self.Q.check_message(inner, inner_ctx)
        values = self.Q.decode_message(inner, inner_ctx)
        if self.scaled:
            values = values / self.zeta(ctx.n, ctx.d)
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        return scatter_kept(out, message, self.k_for(ctx.d), values.to(ctx.dtype), self.name)

    def theory(self, n: int, d: int) -> CompressorTheory:
        k = self.k_for(d)
        zeta = self.zeta(n, d)
        q_bits = sum(f.width * f.count for f in self._q_fields(Context(0, n, d, torch.arange(n), torch.float64,
                                                                         torch.device("cpu"))))
        bits = padded_bits(index_bits(k, d) + q_bits)
        extras = {"k": k, "zeta": zeta, **_bc_extras("topk_q", d, k=k, zeta=zeta)}
        if self.scaled:
            return CompressorTheory("contractive", omega=None, delta=k / (zeta * d), A=None, B=None, bits=bits,
                                    extras=extras)
        extras["note"] = "unscaled: in BC's B1(k/d, zeta) and B2(k/d, zeta); scale by 1/zeta for B3"
        return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=bits, extras=extras)
