r"""MicroAdam: Adam whose state is a window of Top-K gradients plus a 4-bit error-feedback buffer.

Pure PyTorch: one code path on every device (the tensors of the state live on the parameter's
device). The authors' package runs the 4-bit quantisation, the Top-K gathers and the fused window
statistics as CUDA kernels; here the same arithmetic is written with ``torch.topk``,
``scatter_add_`` and elementwise operations, block by block without Python loops over blocks or
window slots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from commpress.errors import ConfigError, InputError, InputTypeError

__all__ = ["MicroAdam", "MemoryReport", "TensorMemory", "adam_state_bytes", "microadam_state_bytes"]

#: Storage dtypes a window value may have (the paper: bfloat16).
VALUE_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
#: The largest Top-K block whose block-relative indices fit in int16.
INT16_BLOCK = 32768
#: Quantisation levels of the error feedback: 4 bits.
LEVELS = 15


# ----------------------------------------------------------------------------- layout of one tensor
@dataclass(frozen=True)
class _Layout:
    """How one flattened tensor of ``d`` entries is cut: Top-K blocks of ``d_b`` entries (``full`` of
    them, then a last partial block of ``d_last``), ``k_b`` / ``k_last`` entries kept per block, ``k``
    in all; quantisation blocks of ``q`` entries (``n_q`` of them)."""

    d: int
    d_b: int
    full: int
    d_last: int
    k_b: int
    k_last: int
    q: int

    @property
    def k(self) -> int:
        return self.full * self.k_b + self.k_last

    @property
    def n_q(self) -> int:
        return -(-self.d // self.q)

    @property
    def index_dtype(self) -> torch.dtype:
        return torch.int16 if self.d_b <= INT16_BLOCK else torch.int32


def _kept(length: int, density: float | None, k: int | None) -> int:
    """Entries kept in a Top-K block of ``length`` entries: ``ceil(density * length)`` (rounded to 9
    decimals first, so that 0.07 * 100 keeps 7, not 8), or ``min(k, length)``."""
    if length == 0:
        return 0
    if k is not None:
        return min(k, length)
    return max(1, min(length, math.ceil(round(density * length, 9))))


def _layout(d: int, group: dict) -> _Layout:
    d_b = min(d, group["topk_block"]) or 1  # an empty tensor: no block, k = 0
    full, d_last = divmod(d, d_b)
    density, k = group["density"], group["k"]
    return _Layout(d=d, d_b=d_b, full=full, d_last=d_last, k_b=_kept(d_b, density, k),
                   k_last=_kept(d_last, density, k), q=group["quant_block"])


def _offsets(layout: _Layout, device: torch.device) -> torch.Tensor:
    """(k,) int64: the start of the Top-K block each window position belongs to (local + offset = global)."""
    starts = torch.arange(layout.full, device=device, dtype=torch.int64) * layout.d_b
    out = starts.repeat_interleave(layout.k_b)
    if layout.k_last:
        out = torch.cat([out, torch.full((layout.k_last,), layout.full * layout.d_b, device=device,
                                         dtype=torch.int64)])
    return out


# ----------------------------------------------------------------------------- the pieces of a step
def _topk_blocks(a: torch.Tensor, layout: _Layout) -> torch.Tensor:
    """(k,) int64 block-relative indices of the ``k_b`` largest ``|a_j|`` of every Top-K block (then the
    ``k_last`` largest of the last partial block)."""
    mag = a.abs()
    parts = []
    if layout.full:
        head = mag[: layout.full * layout.d_b].view(layout.full, layout.d_b)
        parts.append(torch.topk(head, layout.k_b, dim=1, sorted=False).indices.reshape(-1))
    if layout.k_last:
        tail = mag[layout.full * layout.d_b:]
        parts.append(torch.topk(tail, layout.k_last, sorted=False).indices)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _blocks(x: torch.Tensor, q: int, fill: float) -> torch.Tensor:
    """(n_q, q) view of ``x`` padded with ``fill`` to whole quantisation blocks."""
    return torch.nn.functional.pad(x, (0, -x.numel() % q), value=fill).view(-1, q)


def _block_min_max(a: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per quantisation block of ``q`` entries: (min, max) of ``a``, as stored (bfloat16)."""
    lo = _blocks(a, q, math.inf).amin(dim=1)
    hi = _blocks(a, q, -math.inf).amax(dim=1)
    return lo.to(torch.bfloat16), hi.to(torch.bfloat16)


def _quantize(a: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, q: int) -> torch.Tensor:
    """4-bit codes (d,) uint8: ``floor((a - lo_b)/u_b + 1/2)`` with ``u_b = (hi_b - lo_b)/15``, clamped to
    0..15; a block with ``hi_b = lo_b`` gets code 0."""
    lo_f = lo.float()[:, None]
    u = (hi.float()[:, None] - lo_f) / LEVELS
    pos = u > 0
    codes = torch.floor((_blocks(a, q, 0.0) - lo_f) / torch.where(pos, u, 1.0) + 0.5)
    codes = torch.where(pos, codes, 0.0).clamp_(0, LEVELS)
    return codes.reshape(-1)[: a.numel()].to(torch.uint8)


def _dequantize(codes: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, q: int) -> torch.Tensor:
    """``code_j u_b + lo_b`` (float32, (d,))."""
    lo_f = lo.float()[:, None]
    u = (hi.float()[:, None] - lo_f) / LEVELS
    return (_blocks(codes.float(), q, 0.0) * u + lo_f).reshape(-1)[: codes.numel()]


def _pack(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte (entry 2i in the low nibble): (ceil(d/2),) uint8."""
    if codes.numel() % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    pairs = codes.view(-1, 2)
    return pairs[:, 0] | (pairs[:, 1] << 4)


def _unpack(packed: torch.Tensor, d: int) -> torch.Tensor:
    return torch.stack([packed & 0x0F, packed >> 4], dim=1).reshape(-1)[:d]


def _error(state: dict, layout: _Layout) -> torch.Tensor:
    """The error feedback :math:`Q^{-1}(e)` as a float32 (d,) vector."""
    return _dequantize(_unpack(state["ef"], layout.d), state["ef_min"], state["ef_max"], layout.q)


def _store_error(state: dict, a: torch.Tensor, layout: _Layout) -> None:
    """:math:`e \\leftarrow Q(a)` with fresh block minima and maxima (steps 7-8)."""
    lo, hi = _block_min_max(a, layout.q)
    state["ef_min"].copy_(lo)
    state["ef_max"].copy_(hi)
    state["ef"].copy_(_pack(_quantize(a, lo, hi, layout.q)))


def _window_ages(t: int, m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Age ``r = (t-1-s') mod m`` of every slot ``s'`` and whether it is filled (``s' < min(t, m)``)."""
    slots = torch.arange(m, device=device)
    return (t - 1 - slots) % m, slots < min(t, m)


def _window_update(state: dict, layout: _Layout, t: int, group: dict, offsets: torch.Tensor) -> torch.Tensor:
    r"""Steps 10-11: :math:`\hat m / (\sqrt{\hat v} + \epsilon)` from the window (float32, (d,))."""
    beta1, beta2 = group["betas"]
    m, eps = group["m"], group["eps"]
    device = offsets.device
    ages, filled = _window_ages(t, m, device)
    betas = torch.tensor([[beta1], [beta2]], dtype=torch.float32, device=device)
    weights = torch.where(filled, torch.pow(betas, ages.to(torch.float32)), 0.0)  # (2, m): beta_i^age
    c1 = (1.0 - beta1) / (1.0 - beta1 ** t)
    c2 = (1.0 - beta2) / (1.0 - beta2 ** t)
    index = (state["indices"].to(torch.int64) + offsets).reshape(1, -1).expand(2, -1)
    values = state["values"].float()
    terms = torch.stack([values, values.square()]).mul_(weights[:, :, None]).reshape(2, -1)  # (2, m k)
    stats = torch.zeros(2, layout.d, device=device).scatter_add_(1, index, terms)
    return (stats[0] * c1) / ((stats[1] * c2).sqrt_() + eps)


# ----------------------------------------------------------------------------- the optimizer
class MicroAdam(torch.optim.Optimizer):
    r"""MicroAdam (Modoranu, Safaryan, Malinovsky, Kurtic, Robert, Richtárik, Alistarh, NeurIPS 2024,
    Algorithm 1; arithmetic as in the authors' code ``ista-daslab-optimizers`` 1.1.15).

    Adam whose moments are recomputed at every step from a ring window of the last ``m`` Top-K
    sparse gradients, with the discarded mass carried by a 4-bit error-feedback buffer. Per
    parameter tensor, flattened to :math:`d` entries, at step :math:`t = 1, 2, \dots` with gradient
    :math:`g_t` and slot :math:`s = (t-1) \bmod m`:

    .. math::
        a_t &= g_t + Q^{-1}(e_t; \delta, \Delta)
        && \text{(add the error feedback)}\\
        I[s], V[s] &= \mathrm{Top}_{k_b}(|a_t|) \text{ per block of } d_b,\ \ a_{t, I[s]}
        && \text{(window slot } s\text{)}\\
        a_{t, I[s]} &\leftarrow 0, \quad \delta_b, \Delta_b = \min_b a_t, \max_b a_t, \quad
        e_{t+1} = Q(a_t; \delta, \Delta)
        && \text{(new error, 4 bits)}\\
        \theta &\leftarrow (1 - \eta_t w)\, \theta
        && \text{(decoupled weight decay)}\\
        \hat m &= c_1 \textstyle\sum_{s'} \beta_1^{r(s')} \mathrm{scatter}(I[s'], V[s']), \quad
        \hat v = c_2 \textstyle\sum_{s'} \beta_2^{r(s')} \mathrm{scatter}(I[s'], V[s']^2)\\
        \theta_{t+1} &= \theta_t - \eta_t\, \hat m / (\sqrt{\hat v} + \epsilon)

    with :math:`c_i = (1-\beta_i)/(1-\beta_i^t)`, the age :math:`r(s') = (t-1-s') \bmod m` of slot
    :math:`s'` (slots :math:`s' < \min(t, m)`), and the 4-bit quantiser on blocks of ``quant_block``
    entries, :math:`u_b = (\Delta_b - \delta_b)/15`,
    :math:`Q(a)_j = \lfloor (a_j - \delta_b)/u_b + \tfrac12 \rfloor \in \{0..15\}`,
    :math:`Q^{-1}(e)_j = e_j u_b + \delta_b`. Entries absent from the window are not updated. With
    ``alpha > 0`` the update also takes :math:`\alpha\, Q^{-1}(e_{t+1})` and the buffer keeps
    :math:`Q((1-\alpha) Q^{-1}(e_{t+1}))`.

    State per tensor (the paper's layout): ``indices`` (m, k) int16 (block-relative),
    ``values`` (m, k) bfloat16, ``ef`` (ceil(d/2),) uint8 (two 4-bit codes a byte), ``ef_min``,
    ``ef_max`` (ceil(d/q),) bfloat16, and the step. All zero at the start. With :math:`k = d/100`,
    :math:`m = 10` and a large ``quant_block`` that is about :math:`0.9 d` bytes, against :math:`8 d`
    for Adam's float32 moments; :meth:`memory_report` gives the exact numbers.

    With ``density=1`` (the error stays 0), ``m`` at least the number of steps and
    ``value_dtype=torch.float32`` the iterates are those of :class:`torch.optim.AdamW`.

    Args:
        params: parameters or parameter groups, as for any ``torch.optim`` optimizer.
        lr: learning rate :math:`\eta_t`.
        betas: :math:`(\beta_1, \beta_2)`.
        eps: :math:`\epsilon`, added to :math:`\sqrt{\hat v}`.
        weight_decay: decoupled weight decay :math:`w`.
        m: window size (gradients kept).
        density: fraction kept per Top-K block, :math:`k_b = \lceil \text{density} \cdot d_b \rceil`
            (default 0.01; the paper's :math:`k_{\rm init}`; the product is rounded to 9 decimals
            first, so that 0.07 of 100 keeps 7).
        k: instead of ``density``, entries kept per Top-K block, :math:`k_b = \min(k, d_b)` (for a
            tensor smaller than ``topk_block``: its Top-k).
        quant_block: entries per quantisation block of the error feedback (the paper uses 100000 on
            GLUE, 64 on Llama-2; default 64).
        topk_block: entries per Top-K block, :math:`d_b` (default 16384; indices are int16 up to 32768).
        alpha: densification :math:`\alpha \in [0, 1]` (default 0).
        value_dtype: storage of the window values, ``torch.bfloat16`` (default, the paper's),
            ``torch.float16`` or ``torch.float32``.

    .. note::
        The authors' kernels size the Top-K blocks from the GPU's shared memory
        (:math:`d_b = \min(d, \lfloor F/2 \rfloor)`, :math:`F` the floats of shared memory per thread
        block), so their :math:`k` depends on the card; here :math:`d_b` is the explicit
        ``topk_block``. A quantisation block whose minimum equals its maximum gets code 0 (the
        kernel divides by zero there), and codes are clamped to 0..15 (the bounds are stored in
        bfloat16, so they may round inside the block's range). The authors' code allocates
        :math:`\lfloor d/q \rfloor + 1` bounds per tensor, here :math:`\lceil d/q \rceil` (four bytes less
        when :math:`q` divides :math:`d`). The convergence theorem of the paper is for an AMSGrad-type
        variant (running maximum of :math:`\hat v`); this class is the practical algorithm. An entry that
        appears once in the window (the newest slot, large :math:`t`) moves by
        :math:`\eta_t (1-\beta_1)/\sqrt{1-\beta_2} \approx 3.2\,\eta_t`, where Adam moves an entry with a
        steady gradient by about :math:`\eta_t`: the window forgets the history that keeps Adam's
        :math:`\hat v` large, so a constant learning rate leaves a noise floor; decay it to converge.

    References:
        Modoranu, Safaryan, Malinovsky, Kurtic, Robert, Richtárik, Alistarh, MicroAdam: Accurate
        Adaptive Optimization with Low Space Overhead and Provable Convergence, NeurIPS 2024
        (arXiv 2405.15593), Algorithm 1.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, m: int = 10, density: float | None = None, k: int | None = None,
                 quant_block: int = 64, topk_block: int = 16384, alpha: float = 0.0,
                 value_dtype: torch.dtype = torch.bfloat16) -> None:
        if density is not None and k is not None:
            raise ConfigError(f"MicroAdam takes density or k, not both; got density={density}, k={k}. "
                              "Pass one of them (density=0.01 keeps 1% of every Top-K block).")
        if k is None and density is None:
            density = 0.01
        _check_settings(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, m=m, density=density, k=k,
                        quant_block=quant_block, topk_block=topk_block, alpha=alpha, value_dtype=value_dtype)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, m=int(m), density=density,
                        k=None if k is None else int(k), quant_block=int(quant_block), topk_block=int(topk_block),
                        alpha=alpha, value_dtype=value_dtype)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        params = param_group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, torch.Tensor):
                raise InputTypeError(f"MicroAdam optimizes tensors; parameter {i} is a {type(p).__name__}. "
                                     "Pass model.parameters() or a list of tensors.")
            if not p.is_floating_point():
                raise InputTypeError(f"MicroAdam needs floating-point parameters; parameter {i} has dtype "
                                     f"{p.dtype}. Leave integer and complex tensors out of the optimizer.")
            if p.is_meta:
                raise InputError(f"MicroAdam needs parameters with data; parameter {i} is on the 'meta' device. "
                                 "Materialise the model (e.g. model.to_empty(device=...)) first.")
        if "k" in param_group and "density" not in param_group:
            param_group = {**param_group, "density": None}  # a group's own k replaces the default density
        elif "density" in param_group and "k" not in param_group:
            param_group = {**param_group, "k": None}
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        settings = {key: group[key] for key in self.defaults}
        if settings["density"] is not None and settings["k"] is not None:
            raise ConfigError(f"MicroAdam takes density or k, not both; a parameter group has "
                              f"density={settings['density']}, k={settings['k']}. Set one of them to None.")
        _check_settings(**settings)

    # --------------------------------------------------------------------- stepping
    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        layout = _layout(p.numel(), group)
        state = self.state[p]
        state["step"] = 0
        state["indices"] = torch.zeros(group["m"], layout.k, dtype=layout.index_dtype, device=p.device)
        state["values"] = torch.zeros(group["m"], layout.k, dtype=group["value_dtype"], device=p.device)
        state["ef"] = torch.zeros(-(-layout.d // 2), dtype=torch.uint8, device=p.device)
        state["ef_min"] = torch.zeros(layout.n_q, dtype=torch.bfloat16, device=p.device)
        state["ef_max"] = torch.zeros(layout.n_q, dtype=torch.bfloat16, device=p.device)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One MicroAdam step on every parameter with a gradient; returns the closure's loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or p.numel() == 0:
                    continue
                if p.grad.is_sparse:
                    raise InputError("MicroAdam does not support sparse gradients (torch.sparse layout); "
                                     "use dense gradients, e.g. nn.Embedding(..., sparse=False).")
                state = self.state[p]
                if not state:
                    state = self._init_state(p, group)
                self._step_tensor(p, state, group)
        return loss

    def _step_tensor(self, p: torch.Tensor, state: dict, group: dict) -> None:
        layout = _layout(p.numel(), group)
        t = state["step"] + 1
        state["step"] = t
        s = (t - 1) % group["m"]
        cache = self.__dict__.setdefault("_offsets_cache", {})  # derived from the layout: not state
        offsets = cache.get((layout, p.device))
        if offsets is None:
            offsets = cache[(layout, p.device)] = _offsets(layout, p.device)
        # (4) add the error feedback
        a = p.grad.reshape(-1).float() + _error(state, layout)
        # (5, 9) Top-K per block into window slot s
        local = _topk_blocks(a, layout)
        chosen = local + offsets
        state["indices"][s].copy_(local)
        state["values"][s].copy_(a[chosen])
        # (6-8) zero the selected entries, quantise the rest as the new error
        a.index_fill_(0, chosen, 0.0)
        _store_error(state, a, layout)
        lr, wd, alpha = group["lr"], group["weight_decay"], group["alpha"]
        if wd:
            p.mul_(1.0 - lr * wd)
        # (10-11) Adam statistics from the window
        u = _window_update(state, layout, t, group, offsets)
        if alpha:
            e = _error(state, layout)
            u.add_(e, alpha=alpha)
            _store_error(state, e.mul_(1.0 - alpha), layout)
        # (12)
        p.add_(u.view_as(p).to(p.dtype), alpha=-lr)

    # --------------------------------------------------------------------- checkpoints
    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`torch.optim.Optimizer.load_state_dict`, keeping each state tensor's saved dtype (the
        base class casts every state tensor to its parameter's dtype)."""
        saved = {pid: {key: v.dtype for key, v in entry.items() if isinstance(v, torch.Tensor)}
                 for pid, entry in state_dict["state"].items()}
        saved_ids = [pid for g in state_dict["param_groups"] for pid in g["params"]]
        super().load_state_dict(state_dict)
        params = [p for g in self.param_groups for p in g["params"]]
        for pid, p in zip(saved_ids, params):
            for key, dtype in saved.get(pid, {}).items():
                self.state[p][key] = self.state[p][key].to(dtype)

    # --------------------------------------------------------------------- memory
    def memory_report(self) -> MemoryReport:
        """Bytes of optimizer state per parameter tensor and in total, beside Adam's (float32 m and v).

        ``state_bytes`` are the bytes of the tensors held now (0 before a tensor's first step);
        ``formula_bytes`` are those the layout allocates,
        :math:`m k (b_I + b_V) + \\lceil d/2 \\rceil + 4 \\lceil d/q \\rceil`.
        """
        rows = []
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                layout = _layout(p.numel(), group)
                held = {key: v.numel() * v.element_size() for key, v in self.state.get(p, {}).items()
                        if isinstance(v, torch.Tensor)}
                index_bytes = torch.empty((), dtype=layout.index_dtype).element_size()
                value_bytes = torch.empty((), dtype=group["value_dtype"]).element_size()
                rows.append(TensorMemory(
                    index=index, shape=tuple(p.shape), numel=p.numel(), k=layout.k, m=group["m"],
                    state_bytes=sum(held.values()), breakdown=held,
                    formula_bytes=microadam_state_bytes(layout.d, m=group["m"], k=layout.k, q=layout.q,
                                                        index_bytes=index_bytes, value_bytes=value_bytes),
                    adam_bytes=8 * p.numel()))
                index += 1
        return MemoryReport(tuple(rows))


def _check_settings(*, lr, betas, eps, weight_decay, m, density, k, quant_block, topk_block, alpha,
                    value_dtype) -> None:
    """One ConfigError naming the first bad setting, its value and what to pass instead."""
    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not (isinstance(lr, (int, float)) and lr >= 0 and math.isfinite(lr)):
        raise ConfigError(f"MicroAdam needs a finite lr >= 0; got lr={lr!r}. Pass e.g. lr=1e-3.")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0.0 <= b < 1.0 for b in betas)):
        raise ConfigError(f"MicroAdam needs betas=(beta1, beta2) with 0 <= beta < 1; got betas={betas!r}. "
                          "Pass e.g. betas=(0.9, 0.999).")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ConfigError(f"MicroAdam needs a finite eps >= 0; got eps={eps!r}. Pass e.g. eps=1e-8.")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise ConfigError(f"MicroAdam needs weight_decay >= 0; got weight_decay={weight_decay!r}. Pass 0 for none.")
    if not (is_int(m) and m >= 1):
        raise ConfigError(f"MicroAdam needs a window of m >= 1 gradients (an int); got m={m!r}. "
                          "Pass e.g. m=10 (the paper's).")
    if k is not None and not (is_int(k) and k >= 1):
        raise ConfigError(f"MicroAdam needs k >= 1 entries kept per Top-K block (an int); got k={k!r}. "
                          "Pass e.g. k=1, or density=0.01 instead.")
    if density is not None and not (isinstance(density, (int, float)) and 0.0 < density <= 1.0):
        raise ConfigError(f"MicroAdam needs 0 < density <= 1; got density={density!r}. "
                          "Pass e.g. density=0.01 (1% of every Top-K block).")
    if not (is_int(quant_block) and quant_block >= 1):
        raise ConfigError(f"MicroAdam needs quant_block >= 1 entries (an int); got quant_block={quant_block!r}. "
                          "Pass e.g. quant_block=64.")
    if not (is_int(topk_block) and 1 <= topk_block < 2 ** 31):
        raise ConfigError(f"MicroAdam needs 1 <= topk_block < 2**31 (an int); got topk_block={topk_block!r}. "
                          "Pass e.g. topk_block=16384 (int16 indices up to 32768).")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ConfigError(f"MicroAdam needs 0 <= alpha <= 1; got alpha={alpha!r}. Pass alpha=0 for none.")
    if value_dtype not in VALUE_DTYPES:
        raise ConfigError(f"MicroAdam stores window values as bfloat16, float16 or float32; got "
                          f"value_dtype={value_dtype!r}. Pass value_dtype=torch.bfloat16 (the paper's).")


# ----------------------------------------------------------------------------- memory accounting
def microadam_state_bytes(d: int, *, m: int, k: int, q: int, index_bytes: int = 2, value_bytes: int = 2) -> int:
    r"""Bytes of MicroAdam's state for one tensor of ``d`` entries:
    :math:`m k (b_I + b_V) + \lceil d/2 \rceil + 4 \lceil d/q \rceil` (window indices and values, packed
    4-bit error, bfloat16 minimum and maximum per quantisation block). With int16 indices and bfloat16
    values, :math:`k = d/100`, :math:`m = 10` and :math:`q \gg 1`: about :math:`0.9 d`."""
    return m * k * (index_bytes + value_bytes) + -(-d // 2) + 4 * -(-d // q)


def adam_state_bytes(params: Iterable[torch.Tensor], *, bytes_per_entry: int = 4) -> int:
    """Bytes of Adam's state (first and second moment, ``bytes_per_entry`` each: 4 for float32, so 8 bytes
    per parameter entry) for the same parameters, without the step counters."""
    if isinstance(params, torch.Tensor):
        params = [params]
    total = 0
    for p in params:
        for q in (p["params"] if isinstance(p, dict) else [p]):
            total += 2 * bytes_per_entry * q.numel()
    return total


@dataclass(frozen=True)
class TensorMemory:
    """One parameter tensor's optimizer state: bytes held, bytes the layout allocates, Adam's bytes."""

    index: int           # position of the tensor in the optimizer's parameter groups
    shape: tuple[int, ...]
    numel: int           # d
    k: int               # window entries per slot
    m: int               # window slots
    state_bytes: int     # bytes of the state tensors held now (0 before the first step)
    breakdown: dict[str, int]  # state tensor name -> bytes
    formula_bytes: int   # m k (index + value bytes) + ceil(d/2) + 4 ceil(d/q)
    adam_bytes: int      # 8 d (float32 m and v)


@dataclass(frozen=True)
class MemoryReport:
    """Optimizer state of a :class:`MicroAdam` per parameter tensor, with Adam's for the same tensors."""

    tensors: tuple[TensorMemory, ...]

    @property
    def numel(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def state_bytes(self) -> int:
        """Bytes of the state tensors held now."""
        return sum(t.state_bytes for t in self.tensors)

    @property
    def formula_bytes(self) -> int:
        """Bytes the layout allocates once every tensor has taken a step."""
        return sum(t.formula_bytes for t in self.tensors)

    @property
    def total(self) -> int:
        """Bytes of MicroAdam's state once allocated (the formula; equal to ``state_bytes`` after a step)."""
        return self.formula_bytes

    @property
    def adam_bytes(self) -> int:
        """Adam's state for the same parameters: 8 bytes per entry (float32 m and v)."""
        return sum(t.adam_bytes for t in self.tensors)

    @property
    def bytes_per_param(self) -> float:
        return self.total / self.numel if self.numel else math.nan

    def __str__(self) -> str:
        lines = [f"{'tensor':>6} {'shape':>16} {'d':>10} {'k':>7} {'MicroAdam B':>12} {'B/param':>8} {'Adam B':>12}"]
        for t in self.tensors:
            lines.append(f"{t.index:>6} {str(t.shape):>16} {t.numel:>10} {t.k:>7} {t.formula_bytes:>12} "
                         f"{t.formula_bytes / max(t.numel, 1):>8.3f} {t.adam_bytes:>12}")
        ratio = self.total / self.adam_bytes if self.adam_bytes else math.nan
        lines.append(f"{'total':>6} {'':>16} {self.numel:>10} {'':>7} {self.total:>12} {self.bytes_per_param:>8.3f} "
                     f"{self.adam_bytes:>12}   (MicroAdam / Adam = {ratio:.3f})")
        return "\n".join(lines)
