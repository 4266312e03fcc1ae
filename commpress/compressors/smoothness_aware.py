r"""Smoothness-aware compressors, built from a problem's smoothness matrices :math:`\mathbf L_i` (one per client).

Three constructions (Safaryan, Hanzely, Richtárik, NeurIPS 2021; Wang, Safaryan, Richtárik, NeurIPS
2022), each an ordinary :class:`~commpress.compressors.Compressor` that holds per-client data and
therefore serves exactly the ``(n, d)`` it was built for (``check_shape`` refuses any other); they
are not in the name registry (a name cannot carry matrices): build them from the matrices, e.g.
``SmoothnessSparsifier.from_matrices(problem.smoothness_matrices(), tau=8)``, or let the algorithms
``dcgd_plus`` / ``diana_plus`` build them.

- :class:`SmoothnessSparsifier`: independent Bernoulli sparsification with fixed per-client keep
  probabilities (the DCGD+/DIANA+ compressor); the probabilities depend only on client i's data, so
  they cost no communication.
- :class:`SmoothnessAware`: any compressor :math:`\mathcal Q` applied in the client's smoothness
  geometry: send :math:`\mathcal Q(\mathbf L_i^{\dagger1/2}v)`, decode :math:`\mathbf L_i^{1/2}\mathcal Q(\cdot)`.
  The server must hold :math:`\mathbf L_i^{1/2}`: a one-time transfer (:meth:`SmoothnessAware.setup_bits`)
  that the algorithms charge to the initialisation round.
- :class:`VaryingStepQuantizer`: stochastic rounding of coordinate j to the grid :math:`t_{ij}\|y\|\mathbb Z`
  with per-client relative steps :math:`t_{ij}` (SAQ's quantization with varying steps; the steps of
  :func:`commpress.theory.varying_steps`), to be used inside :class:`SmoothnessAware`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commpress._rng import private_rand
from commpress.compressors._checks import check_float_bits
from commpress.compressors._sparse import index_bits
from commpress.compressors.base import Compressor, CompressorTheory, Context, Layout, Message, f32_up, padded_bits
from commpress.compressors.registry import make
from commpress.compressors.wangni import Wangni
from commpress.errors import ConfigError, InputError, PayloadError
from commpress.wire import F32, UINT, Field

__all__ = ["SmoothnessSparsifier", "SmoothnessAware", "VaryingStepQuantizer", "matrix_roots"]


def _check_rows(owner: str, what: str, T: Any, dims: int) -> torch.Tensor:
    T = torch.as_tensor(T)
    if not T.is_floating_point() or T.dim() != dims:
        raise InputError(f"{owner} needs {what} as a floating tensor with {dims} dimensions; got shape "
                         f"{tuple(T.shape)}, dtype {T.dtype}.")
    T = T.to(torch.float64)
    if not bool(torch.isfinite(T).all()):
        raise InputError(f"{owner}: {what} holds NaN or Inf.")
    return T


def _check_served(owner: str, ctx: Context, n: int, d: int) -> None:
    if ctx.n != n or ctx.d != d:
        raise ConfigError(
            f"{owner} was built for n={n} clients and d={d} (its per-client data); it cannot serve n={ctx.n}, "
            f"d={ctx.d}. Build it from the matrices of this problem."
        )


def matrix_roots(L: torch.Tensor, *, rcond: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r""":math:`(\mathbf L_i^{1/2}, \mathbf L_i^{\dagger1/2}, r_i)` of PSD matrices ``(n, d, d)`` (float64), eigenvalues
    below ``rcond`` times the largest treated as 0; :math:`r_i` the ranks ``(n,)``."""
    L = 0.5 * (L + L.transpose(-1, -2)).to(torch.float64)
    evals, evecs = torch.linalg.eigh(L)
    cut = rcond * evals[:, -1:].clamp_min(0.0)
    keep = evals > cut
    root = torch.where(keep, evals.clamp_min(0.0).sqrt(), torch.zeros_like(evals))
    inv = torch.where(keep, 1.0 / root.clamp_min(1e-300), torch.zeros_like(evals))
    R = (evecs * root[:, None, :]) @ evecs.transpose(-1, -2)
    Rp = (evecs * inv[:, None, :]) @ evecs.transpose(-1, -2)
    return 0.5 * (R + R.transpose(-1, -2)), 0.5 * (Rp + Rp.transpose(-1, -2)), keep.sum(-1)


class SmoothnessSparsifier(Wangni):
    r"""Sparsification with fixed per-client keep probabilities (DCGD+/DIANA+; Safaryan, Hanzely, Richtárik 2021).

    .. math:: \mathcal C_i(v) = \sum_j \frac{\xi_{ij}}{p_{ij}} v_j e_j,\qquad \xi_{ij}\sim\mathrm{Bernoulli}(p_{ij})\ \text{independent},

    :math:`p_{ij}` computed once from :math:`\mathbf L_i` (:func:`commpress.theory.sampling_probabilities`:
    ``"trace"`` :math:`p_{ij}\propto\sqrt{\mathbf L_{i,jj}}` capped at 1, ``"exact"``, ``"uniform"`` = Bernoulli Rand-τ,
    ``"equalise"``). Unbiased on vectors vanishing where :math:`p_{ij}=0`, with
    :math:`\mathbb E\|\mathcal C_i(v)-v\|^2=\sum_j(1/p_{ij}-1)v_j^2`, so :math:`\omega=\max_{p_{ij}>0}(1/p_{ij}-1)`.

    Payload per client (as Wangni's, the support is random): a 32-bit count c, c float32 values and the
    index set (c indices of ceil(log2 d) bits or a d-bit bitmap, whichever is shorter); expected
    :math:`\sum_jp_{ij}` values. Randomness: private float64 uniforms, tag ``"smoothness_sparsifier/u"``.

    Args:
        probabilities: ``(n, d)`` keep probabilities in [0, 1].
        float_bits: 32 (default) or 64 bits per value.
    """

    name = "smoothness_sparsifier"

    def __init__(self, probabilities: Any, float_bits: int = 32) -> None:
        p = _check_rows("SmoothnessSparsifier", "probabilities", probabilities, 2)
        if bool(((p < 0) | (p > 1)).any()):
            raise InputError("SmoothnessSparsifier needs probabilities in [0, 1].")
        self.p = p
        self.n_clients, self.dim = int(p.shape[0]), int(p.shape[1])
        self.float_bits = check_float_bits(float_bits, "SmoothnessSparsifier")
        self.epsilon, self.rho = None, None

    @classmethod
    def from_matrices(cls, L: Any, tau: float, sampling: str = "trace", float_bits: int = 32) -> "SmoothnessSparsifier":
        """The sparsifier of the rule ``sampling`` with expected budget ``tau`` kept coordinates per client."""
        from commpress.compressors._smoothness_math import sampling_probabilities

        L = _check_rows("SmoothnessSparsifier", "the smoothness matrices", L, 3)
        out = cls(sampling_probabilities(L, tau, sampling), float_bits=float_bits)
        out.sampling, out.tau = sampling, float(tau)
        return out

    @property
    def mode(self) -> str:
        return "fixed"

    def params(self) -> dict:
        return {"n": self.n_clients, "d": self.dim, "sampling": getattr(self, "sampling", "given"),
                "tau": getattr(self, "tau", float(self.p.sum(-1).mean())), "float_bits": self.float_bits}

    def probabilities(self, X: torch.Tensor) -> torch.Tensor:  # pragma: no cover - Wangni's hook, unused
        raise NotImplementedError

    def _check_shape(self, ctx: Context) -> None:
        _check_served("SmoothnessSparsifier", ctx, self.n_clients, self.dim)

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        from commpress.compressors._sparse import index_message, ragged_rows

        rows, d = X.shape
        p = ctx.select(self.p).to(X.device)
        u = private_rand(ctx.seed, "smoothness_sparsifier/u", ctx.n, (d,), None if ctx.is_full else ctx.clients,
                         dtype=torch.float64, device=X.device)
        mask = u < p
        flat = torch.nonzero(mask.view(-1), as_tuple=True)[0]
        counts = torch.bincount(torch.div(flat, d, rounding_mode="floor"), minlength=rows).cpu()
        kept = X.reshape(-1)[flat].to(torch.float64) / p.reshape(-1)[flat]
        values = ragged_rows(mask, counts.to(X.device),
                             kept.to(torch.float32 if self.float_bits == 32 else torch.float64), flat=flat)
        message = {"count": counts.unsqueeze(1), "values": values}
        message.update(index_message(mask.cpu(), counts, flat=flat.cpu()))
        return message

    def theory(self, n: int, d: int) -> CompressorTheory:
        from commpress.compressors._smoothness_math import sparsification_omega

        if (n, d) != (self.n_clients, self.dim):
            raise ConfigError(f"SmoothnessSparsifier was built for n={self.n_clients}, d={self.dim}; asked for n={n}, d={d}.")
        omega = sparsification_omega(self.p)
        expected = float(self.p.sum(-1).max())
        c = min(d, math.ceil(expected))
        bits = padded_bits(32 + self.float_bits * expected + index_bits(c, d))
        extras = {"bits_data_dependent": True, "expected_count": expected,
                  "bits_note": "expected count sum_j p_ij (the count is random)"}
        if bool((self.p == 0).any()):
            extras["exact_unbiased"] = False
            extras["note"] = "unbiased on vectors that vanish where p_ij = 0 (zero rows/columns of L_i)"
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=bits, extras=extras)


class SmoothnessAware(Compressor):
    r"""Any compressor applied in the smoothness geometry of each client (Wang, Safaryan, Richtárik, NeurIPS 2022).

    .. math:: \mathcal C_i(v) = \mathbf L_i^{1/2}\,\mathcal Q\big(\mathbf L_i^{\dagger1/2}v\big).

    Unbiased whenever :math:`\mathcal Q` is and :math:`v\in\mathrm{range}(\mathbf L_i)` (always for full-rank
    :math:`\mathbf L_i`, e.g. a local l2 term); its variance in the Euclidean norm is
    :math:`\mathbb E\|\mathbf L_i^{1/2}(\mathcal Q(y)-y)\|^2`, :math:`y=\mathbf L_i^{\dagger1/2}v`, so coordinates of
    :math:`y` are weighted by :math:`\mathbf L_{i,jj}`. Declared :math:`\omega\le\omega_{\mathcal Q}\max_i\lambda_{\max}/\lambda_{\min}^+(\mathbf L_i)`
    (a valid, often loose bound on range vectors); the methods use the sharper :math:`\nu_i` of
    :mod:`commpress.theory`. ``extras["inner_omega"]`` is :math:`\omega_{\mathcal Q}`, the constant of
    shifts learned in the transformed space (DIANA+).

    Payload per client: exactly :math:`\mathcal Q`'s message of :math:`y` (same fields and bits). One-time
    cost of the server's :math:`\mathbf L_i^{1/2}`: :meth:`setup_bits` (the symmetric matrix as
    :math:`d(d+1)/2` float32 values).

    Args:
        inner: the compressor :math:`\mathcal Q` (a name, an instance or a dict with ``name``).
        matrices: ``(n, d, d)`` PSD smoothness matrices :math:`\mathbf L_i`.
        rcond: relative eigenvalue cut of the pseudo-inverse root.
    """

    name = "smoothness_aware"

    def __init__(self, inner: Any, matrices: Any, rcond: float = 1e-12) -> None:
        if isinstance(inner, str):
            inner = make(inner)
        elif isinstance(inner, dict) and "name" in inner:
            inner = make(inner["name"], **{k: v for k, v in inner.items() if k != "name"})
        self.inner = inner if isinstance(inner, Compressor) else None
        if self.inner is None:
            raise ConfigError("SmoothnessAware needs an inner compressor; pass inner='randk' (or any compressor).")
        kind = type(self.inner)
        if kind.encode_message is Compressor.encode_message and kind._encode is Compressor._encode:
            raise ConfigError(
                f"SmoothnessAware cannot wrap {self.inner.name!r}: it does not build its messages through "
                "encode_message/decode_message (it overrides apply); pass compressor='randk' or another per-client compressor."
            )
        L = _check_rows("SmoothnessAware", "matrices", matrices, 3)
        if L.shape[1] != L.shape[2]:
            raise InputError(f"SmoothnessAware needs square matrices (n, d, d); got {tuple(L.shape)}.")
        self.rcond = float(rcond)
        self.root, self.pinv_root, self.ranks = matrix_roots(L, rcond=self.rcond)
        self.L = L
        self.n_clients, self.dim = int(L.shape[0]), int(L.shape[1])
        self.deterministic = self.inner.deterministic
        self.correlated = self.inner.correlated

    def params(self) -> dict:
        return {"inner": {"name": self.inner.name, **self.inner.params()}, "n": self.n_clients, "d": self.dim,
                "rcond": self.rcond}

    def setup_bits(self) -> torch.Tensor:
        """One-time bits per client for the server's :math:`\\mathbf L_i^{1/2}`: its upper triangle as
        :math:`d(d+1)/2` float32 values, ``(n,)`` int64 (what the algorithms send at initialisation)."""
        return torch.full((self.n_clients,), 32 * self.dim * (self.dim + 1) // 2, dtype=torch.int64)

    def setup_rows(self) -> torch.Tensor:
        """The upper triangles of :math:`\\mathbf L_i^{1/2}`, ``(n, d(d+1)/2)`` float64: the one-time message."""
        iu = torch.triu_indices(self.dim, self.dim)
        return self.root[:, iu[0], iu[1]]

    def transform(self, X: torch.Tensor, ctx: Context) -> torch.Tensor:
        """:math:`y_i=\\mathbf L_i^{\\dagger1/2}x_i` for the rows of ``X``."""
        P = ctx.select(self.pinv_root).to(device=X.device)
        return torch.bmm(P, X.to(torch.float64)[:, :, None]).squeeze(-1).to(X.dtype)

    # ---- hooks: the inner compressor's message of y
    def check_shape(self, ctx: Context) -> None:
        _check_served("SmoothnessAware", ctx, self.n_clients, self.dim)
        self.inner.check_shape(ctx)

    def encode_message(self, X: torch.Tensor, ctx: Context) -> Message:
        return self.inner.encode_message(self.transform(X, ctx), ctx)

    def decode_message(self, message: Message, ctx: Context) -> torch.Tensor:
        Y = self.inner.decode_message(message, ctx)
        R = ctx.select(self.root).to(device=Y.device)
        return torch.bmm(R, Y.to(torch.float64)[:, :, None]).squeeze(-1).to(ctx.dtype)

    def layout(self, ctx: Context, message: Message | None) -> Layout:
        return self.inner.layout(ctx, message)

    def header_fields(self, ctx: Context) -> list[Field]:
        return self.inner.header_fields(ctx)

    def check_header(self, header: Message, ctx: Context) -> None:
        self.inner.check_header(header, ctx)

    def check_message(self, message: Message, ctx: Context) -> None:
        self.inner.check_message(message, ctx)

    def theory(self, n: int, d: int) -> CompressorTheory:
        if (n, d) != (self.n_clients, self.dim):
            raise ConfigError(f"SmoothnessAware was built for n={self.n_clients}, d={self.dim}; asked for n={n}, d={d}.")
        th = self.inner.theory(n, d)
        evals = torch.linalg.eigvalsh(self.L)
        top = evals[:, -1].clamp_min(0.0)
        low = torch.where(evals > self.rcond * top[:, None], evals, torch.full_like(evals, math.inf)).min(-1).values
        kappa = float((top / low).max()) if bool(torch.isfinite(low).all()) else math.inf
        full_rank = bool((self.ranks == d).all())
        extras = dict(th.extras)
        extras.update(inner_kind=th.kind, inner_omega=th.omega, kappa=kappa, setup_bits=int(self.setup_bits().max()))
        if not full_rank:
            extras["exact_unbiased"] = False
            extras["note"] = "unbiased on range(L_i); some L_i are singular"
        if th.kind == "unbiased" and th.omega is not None:
            omega = th.omega * kappa
            return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=th.bits, extras=extras)
        return CompressorTheory("biased", omega=None, delta=None, A=None, B=None, bits=th.bits, extras=extras)


class VaryingStepQuantizer(Compressor):
    r"""Quantization with varying steps (SAQ, Wang, Safaryan, Richtárik 2022; formulas derived here).

    Coordinate j of client i's vector y is rounded stochastically to the grid :math:`h_{ij}\mathbb Z`,
    :math:`h_{ij}=t_{ij}\|y\|` (the norm sent as float32, rounded upward):

    .. math:: \mathcal Q(y)_j = h_{ij}\big(\lfloor y_j/h_{ij}\rfloor + \xi_j\big),\qquad
              \xi_j\sim\mathrm{Bernoulli}\big(y_j/h_{ij}-\lfloor y_j/h_{ij}\rfloor\big).

    Unbiased, per-coordinate variance at most :math:`h_{ij}^2/4`, so :math:`\omega=\max_i\frac14\sum_jt_{ij}^2`
    (exact bound) and, inside :class:`SmoothnessAware`, :math:`\nu_i\le\frac14\sum_j\mathbf L_{i,jj}t_{ij}^2`.
    The integer :math:`q_j` satisfies :math:`|q_j|\le K_{ij}=\lceil1/t_{ij}\rceil` and is sent as
    :math:`q_j+K_{ij}` in :math:`\lceil\log_2(2K_{ij}+1)\rceil` bits; coordinates with :math:`t_{ij}=\infty`
    are not sent (decoded 0). Payload per client: 32 + sum of those widths (fixed per client).
    Equal steps :math:`t=1/s` give standard s-level quantization (the baseline). The paper's exact
    step rule is not recovered; the default steps (:meth:`from_matrices`) are
    :func:`commpress.theory.varying_steps`, :math:`t_{ij}\propto\mathbf L_{i,jj}^{-1/2}`.
    Randomness: private uniforms, tag ``"varying_steps/u"``.

    Args:
        steps: ``(n, d)`` relative steps :math:`t_{ij}>0` (``inf`` allowed: coordinate not sent).
    """

    name = "varying_steps"

    def __init__(self, steps: Any) -> None:
        t = torch.as_tensor(steps).to(torch.float64)
        if t.dim() != 2 or bool(torch.isnan(t).any()) or bool((t <= 0).any()):
            raise InputError("VaryingStepQuantizer needs steps (n, d) > 0 (inf: coordinate not sent).")
        self.t = t
        self.n_clients, self.dim = int(t.shape[0]), int(t.shape[1])
        finite = torch.isfinite(t)
        self.K = torch.where(finite, torch.ceil(1.0 / t.where(finite, torch.ones_like(t))), torch.zeros_like(t)).to(torch.int64)
        self.width = torch.where(self.K > 0, torch.ceil(torch.log2(2.0 * self.K.to(torch.float64) + 1.0)),
                                 torch.zeros_like(t)).to(torch.int64)
        self.widths = sorted(int(w) for w in self.width.unique().tolist() if w > 0)

    @classmethod
    def from_matrices(cls, L: Any, s: int = 1, uniform: bool = False) -> "VaryingStepQuantizer":
        """Steps :math:`t_{ij}=\\frac1s\\sqrt{G_i/\\mathbf L_{i,jj}}` (``uniform=True``: :math:`1/s` everywhere)."""
        from commpress.compressors._smoothness_math import varying_steps

        L = _check_rows("VaryingStepQuantizer", "the smoothness matrices", L, 3)
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ConfigError(f"VaryingStepQuantizer needs an integer s >= 1; got s={s!r}.")
        if uniform:
            out = cls(torch.full(L.shape[:2], 1.0 / s, dtype=torch.float64))
        else:
            out = cls(varying_steps(L, s))
        out.s, out.uniform = s, uniform
        return out

    def params(self) -> dict:
        return {"n": self.n_clients, "d": self.dim, "s": getattr(self, "s", None), "uniform": getattr(self, "uniform", None)}

    def check_shape(self, ctx: Context) -> None:
        _check_served("VaryingStepQuantizer", ctx, self.n_clients, self.dim)

    def _fields(self, client: int) -> list[Field]:
        w = self.width[client]
        return [Field("norm", F32, 32, 1)] + [Field(f"q{b}", UINT, b, int((w == b).sum())) for b in self.widths]

    def layout(self, ctx: Context, message: Message | None) -> Layout:
        return [(self._fields(int(c)), torch.tensor([r])) for r, c in enumerate(ctx.clients.tolist())]

    def _slots(self, ctx: Context, b: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Per row: the coordinates of width b first (in index order), their count, the max count."""
        W = ctx.select(self.width)
        mask = W == b
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        counts = mask.sum(-1)
        return order, counts, max(1, int(counts.max()))

    def encode_message(self, X: torch.Tensor, ctx: Context) -> Message:
        Y = X.to(torch.float64)
        norm = f32_up(Y.norm(dim=1, keepdim=True))
        t = ctx.select(self.t).to(Y.device)
        K = ctx.select(self.K).to(Y.device)
        h = norm.to(torch.float64) * t
        safe = torch.isfinite(h) & (h > 0)
        z = torch.where(safe, Y / h.where(safe, torch.ones_like(h)), torch.zeros_like(Y))
        low = torch.floor(z)
        u = ctx.private_rand("varying_steps/u", dtype=torch.float64)
        q = (low + (u < (z - low)).to(torch.float64)).clamp(-K.to(torch.float64), K.to(torch.float64)).to(torch.int64)
        codes = q + K
        message: Message = {"norm": norm.to(torch.float32)}
        for b in self.widths:
            order, counts, slots = self._slots(ctx, b)
            vals = codes.gather(1, order[:, :slots].to(codes.device))
            valid = torch.arange(slots, device=vals.device)[None, :] < counts[:, None].to(vals.device)
            message[f"q{b}"] = torch.where(valid, vals, torch.zeros_like(vals))
        return message

    def check_message(self, message: Message, ctx: Context) -> None:
        super().check_message(message, ctx)
        if bool((message["norm"] < 0).any()):
            raise PayloadError("varying_steps: negative norm header; the payload is corrupted.")

    def decode_message(self, message: Message, ctx: Context) -> torch.Tensor:
        t = ctx.select(self.t)
        K = ctx.select(self.K)
        codes = torch.zeros(ctx.rows, ctx.d, dtype=torch.int64)
        for b in self.widths:
            order, counts, slots = self._slots(ctx, b)
            vals = message[f"q{b}"][:, :slots].to(torch.int64).cpu()
            if vals.shape[1] < slots:
                vals = torch.cat([vals, torch.zeros(ctx.rows, slots - vals.shape[1], dtype=torch.int64)], dim=1)
            valid = torch.arange(slots)[None, :] < counts[:, None]
            idx = order[:, :slots]  # slots past a row's count point at other coordinates: write their value back
            codes.scatter_(1, idx, torch.where(valid, vals, codes.gather(1, idx)))
        q = (codes - K).to(torch.float64)
        if bool((q.abs() > K.to(torch.float64)).any()):
            raise PayloadError("varying_steps: a code exceeds its level range; the payload is corrupted.")
        norm = message["norm"][:, :1].to(torch.float64).cpu()
        h = torch.where(torch.isfinite(t), norm * t.where(torch.isfinite(t), torch.zeros_like(t)), torch.zeros_like(t))
        return (q * h).to(device=ctx.device, dtype=ctx.dtype)

    def theory(self, n: int, d: int) -> CompressorTheory:
        if (n, d) != (self.n_clients, self.dim):
            raise ConfigError(f"VaryingStepQuantizer was built for n={self.n_clients}, d={self.dim}; asked for n={n}, d={d}.")
        t = torch.where(torch.isfinite(self.t), self.t, torch.zeros_like(self.t))
        omega = float((0.25 * (t * t).sum(-1)).max())
        bits_rows = [8 * math.ceil((32 + int(self.width[i].sum())) / 8) for i in range(n)]
        extras = {"bits_per_client": bits_rows, "bits_data_dependent": len(set(bits_rows)) > 1}
        if bool((~torch.isfinite(self.t)).any()):
            extras["exact_unbiased"] = False
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=max(bits_rows), extras=extras)
