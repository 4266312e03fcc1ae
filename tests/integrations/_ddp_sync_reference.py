"""FROZEN test oracle: the synchronous DDP hooks of commpress as of commit 9377320 (before issue 12.5).

``commpress.integrations.ddp`` now returns futures that complete with their collectives; this copy
of the old implementation (its hooks ran every collective synchronously and returned a completed
future) is kept verbatim, with the old synchronous collectives of
``commpress/integrations/_collectives.py`` inlined below, so that ``test_ddp_async.py`` can check
that the asynchronous hooks give bit-identical gradients, memories and byte counts. Do not edit it
to follow the library: it is the reference.
"""

import warnings
from typing import Any, ClassVar

import torch
import torch.distributed as dist

from commpress._rng import SEED_LIMIT, derive_seed
from commpress.compressors import Compressor, make
from commpress.errors import CommpressError, ConfigError, DistributedError, InputTypeError
from commpress.network._collectives import gather_int64, gather_padded_bytes
from commpress.integrations._memory import BucketMemory, Signature, has_keys
from commpress.integrations._traffic import Traffic

__all__ = [
    "CompressionHookState",
    "DianaHookState",
    "EF21HookState",
    "EFHookState",
    "METHODS",
    "compressed_allreduce_hook",
    "diana_hook",
    "ef21_hook",
    "ef_hook",
    "register",
]

_WORK_DTYPES = (torch.float32, torch.float64)
_FORMAT = 1  # version of the saved state
#: Slots that belong to this process only: not saved, reset on load.
_TRANSIENT = ("process_group", "_param_keys", "_perms", "_warned")


# ---------------------------------------------------------------------------- states
class CompressionHookState:
    r"""Compressed averaging of DDP gradient buckets: no memory.

    Rank :math:`i` of :math:`n` sends :math:`\mathcal C_i(x_i)` of its bucket gradient
    :math:`x_i`; every rank receives

    .. math:: \hat g = \frac1n \sum_{i=1}^n \mathcal C_i(x_i),

    the DCGD estimator (Khirirat et al. 2018; unbiased when :math:`\mathcal C` is).

    Args:
        compressor: a registered name (``"cq"``, ``"qsgd"``, ...) or a compressor instance
            (``commpress.compressors.make("cq", levels=3)``).
        process_group: the DDP model's group; ``None`` is the default group.
        seed: base seed of the shared and private randomness of every round.
        warmup_steps: uncompressed steps first (>= 2: DDP rebuilds its buckets after step 1).

    Attributes:
        step: steps completed (one per backward pass).
        traffic: bytes this rank sent (:class:`~commpress.integrations._traffic.Traffic`).

    Saved with ``torch.save`` (everything but the process group, which becomes the default
    group on load, and the binding to the model: bind again after loading); load with
    ``torch.load(path, weights_only=False)``, from trusted files only.
    """

    __slots__ = ("process_group", "compressor", "seed", "warmup_steps", "step", "traffic", "memory",
                 "_param_keys", "_perms", "_warned")
    #: Names of the per-bucket memory tensors of this method.
    _memories: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        compressor: str | Compressor = "identity",
        *,
        process_group: Any = None,
        seed: int = 0,
        warmup_steps: int = 2,
    ) -> None:
        self.process_group = process_group
        self.compressor = _check_compressor(compressor)
        self.seed = _check_seed(seed)
        self.warmup_steps = _check_warmup(warmup_steps)
        self.step = 0
        self.traffic = Traffic()
        self.memory = BucketMemory(self._memories)
        self._reset_transient()

    def _reset_transient(self) -> None:
        self.process_group = getattr(self, "process_group", None)
        self._param_keys: dict[int, int] = {}
        self._perms: dict[tuple, tuple[tuple[int, int], ...] | None] = {}
        self._warned = False

    def bind(self, model: torch.nn.Module) -> "CompressionHookState":
        """Know the parameters of ``model`` (the DDP model or its module): canonical bucket order
        and memory that follows DDP's regrouping. Call again after loading a saved state."""
        if not isinstance(model, torch.nn.Module):
            raise InputTypeError(f"bind expects the DDP model (a torch.nn.Module); got {type(model).__name__}.")
        self._param_keys = {id(p): i for i, p in enumerate(model.parameters())}
        self._perms = {}
        return self

    def round_seed(self, bucket_index: int) -> int:
        """The seed of bucket ``bucket_index`` at the current step: the same on every rank."""
        return derive_seed(self.seed, self.step, int(bucket_index))

    # -------------------------------------------------------------- checkpointing
    @classmethod
    def _slot_names(cls) -> list[str]:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names.extend(getattr(klass, "__slots__", ()))
        return names

    def __getstate__(self) -> dict[str, Any]:
        saved = {name: getattr(self, name) for name in self._slot_names() if name not in _TRANSIENT}
        saved["_format"] = _FORMAT
        return saved

    def __setstate__(self, saved: dict[str, Any]) -> None:
        saved = dict(saved)
        if saved.pop("_format", None) != _FORMAT:
            raise ConfigError(
                f"this {type(self).__name__} was saved in an unknown format; save it again with this "
                "version of commpress."
            )
        for name, value in saved.items():
            setattr(self, name, value)
        self.process_group = None  # None: the default group
        self._reset_transient()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(compressor={self.compressor!r}, seed={self.seed}, "
            f"warmup_steps={self.warmup_steps}, step={self.step}, bound={bool(self._param_keys)})"
        )

    # -------------------------------------------------------------- bucket layout
    def _layout(self, bucket: Any, index: int, numel: int) -> tuple[Signature, tuple[tuple[int, int], ...] | None]:
        """The bucket's signature and its parameters' ``(start, size)`` spans in canonical order
        (None: the bucket is canonical already)."""
        params = bucket.parameters() if hasattr(bucket, "parameters") else None
        sizes = [p.numel() for p in params] if params else []
        if not sizes or sum(sizes) != numel:  # not a plain concatenation: one block
            return ((None, numel),), None
        keys = [self._param_keys.get(id(p)) for p in params]
        if any(key is None for key in keys):
            return tuple((None, size) for size in sizes), None
        order = sorted(range(len(keys)), key=keys.__getitem__)
        signature = tuple((keys[i], sizes[i]) for i in order)
        cache = (index, tuple(keys))
        if cache not in self._perms:
            if order == list(range(len(keys))):
                self._perms[cache] = None
            else:
                starts = [0]
                for size in sizes[:-1]:
                    starts.append(starts[-1] + size)
                self._perms[cache] = tuple((starts[i], sizes[i]) for i in order)
        return signature, self._perms[cache]

    def _memory_of(self, index: int, signature: Signature, like: torch.Tensor) -> dict[str, torch.Tensor]:
        had = index in self.memory.layouts
        memory, fresh = self.memory.get(index, signature, like)
        if fresh and had and not has_keys(signature) and not self._warned:
            self._warned = True
            warnings.warn(
                f"{type(self).__name__}: bucket {index} changed its layout at step {self.step}; its memory "
                "restarts at zero. Bind the state to the model (state.bind(model), or register()) so that "
                "memory follows the parameters.",
                stacklevel=4,
            )
        return memory

    # -------------------------------------------------------------- the update of one bucket
    def _warmup(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        """Uncompressed mean (the first ``warmup_steps`` steps)."""
        mean, sent = plain_mean(grad, self.process_group, world)
        self.traffic.add(sent, sent)
        return mean

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        """The averaged bucket after the warm-up. Subclasses add their memory here."""
        mean, _ = self._exchange(index, grad, rank, world)
        return mean

    def _end_step(self, last_index: int) -> None:
        """After the last bucket: release memory of bucket indices DDP no longer has."""
        self.memory.forget_after(last_index)
        self.step += 1
        self.traffic.end_step()

    def _exchange(self, index: int, x: torch.Tensor, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Send :math:`\mathcal C_{rank}(x)`; returns (the mean of all ranks' decoded messages, this rank's)."""
        seed = self.round_seed(index)
        C = self.compressor
        X = x.unsqueeze(0)
        error: CommpressError | None = None
        if C.summable:
            own = None
            try:
                own, bits = C.apply(X, seed, clients=[rank], n=world)
                own = own[0]
            except CommpressError as err:  # take part in the all-reduce anyway, flagged
                error = err
            mean, wire = summed_mean(own, x.numel(), self.process_group, world, x)
            if mean is None:
                _raise_collective_failure(error, index, rank)
            self.traffic.add(int(bits[0]) // 8, wire)
            return mean, own
        payload = None
        try:
            payload = C.encode(X, seed, clients=[rank], n=world)[0]
        except CommpressError as err:  # take part in the all-gather anyway, flagged
            error = err
        payloads, wire = all_gather_bytes(payload, self.process_group, world, x.device)
        if payloads is None:
            _raise_collective_failure(error, index, rank)
        # Decoded one rank at a time into a running sum: no (world, d) matrix (a 6M-entry bucket
        # of 2 ranks would be 50 MB, allocated afresh every step).
        total, own = None, None
        for r, message in enumerate(payloads):
            row = C.decode([message], seed, x.numel(), clients=[r], n=world, dtype=x.dtype, device=x.device)[0]
            if r == rank:
                own = row
            if total is None:
                total = row.clone() if r == rank else row  # the sum must not alias this rank's row
            else:
                total.add_(row)
        self.traffic.add(len(payload), wire)
        return total.div_(world), own


class EFHookState(CompressionHookState):
    r"""Error feedback (EF / MEM-SGD) for DDP: one residual per gradient bucket.

    Rank :math:`i` keeps :math:`e_i` (:math:`e_i = 0` at the first compressed step) and sends the
    compression of its gradient plus what it has not sent yet:

    .. math::
        p_i = e_i + x_i, \qquad c_i = \mathcal C_i(p_i), \qquad e_i \leftarrow p_i - c_i, \qquad
        \hat g = \frac1n \sum_i c_i .

    Meant for contractive compressors (sign, top-k, PermK unscaled); with an unbiased compressor
    of large :math:`\omega` the residual grows (use EF21 or DIANA instead).

    References:
        Stich, Cordonnier, Jaggi, Sparsified SGD with memory, NeurIPS 2018 (distributed form
        with the stepsize outside the memory: the learning rate is the optimiser's).
    """

    __slots__ = ()
    _memories = ("residuals",)

    @property
    def residuals(self) -> dict[int, torch.Tensor]:
        """:math:`e_i` per bucket index (canonical order when bound)."""
        return self.memory.tensors["residuals"]

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        e = self._memory_of(index, signature, grad)["residuals"]
        e.add_(grad)
        mean, own = self._exchange(index, e, rank, world)
        e.sub_(own)
        return mean


class EF21HookState(CompressionHookState):
    r"""EF21 for DDP: a gradient estimator per rank and bucket, sent as compressed differences.

    Rank :math:`i` keeps :math:`g_i`, every rank keeps :math:`g = \frac1n\sum_i g_i`:

    .. math::
        c_i = \mathcal C_i(x_i - g_i), \qquad g_i \leftarrow g_i + c_i, \qquad
        g \leftarrow g + \frac1n \sum_i c_i, \qquad \hat g = g .

    .. note:: The last warm-up step initialises :math:`g_i` with the rank's uncompressed gradient
       and :math:`g` with their mean (the paper's :math:`g_i^0 = \nabla f_i(x^0)`); a bucket whose
       memory restarts (see "Bucket layouts" in the module docs) starts from :math:`g_i = g = 0`.

    References:
        Richtárik, Sokolov, Fatkhullin, EF21: A new, simpler, theoretically better, and
        practically faster error feedback, NeurIPS 2021, Alg. 1.
    """

    __slots__ = ()
    _memories = ("estimates", "averages")

    @property
    def estimates(self) -> dict[int, torch.Tensor]:
        """:math:`g_i` per bucket index."""
        return self.memory.tensors["estimates"]

    @property
    def averages(self) -> dict[int, torch.Tensor]:
        """:math:`g` per bucket index."""
        return self.memory.tensors["averages"]

    def _warmup(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        mean = super()._warmup(index, signature, grad, rank, world)
        if self.step == self.warmup_steps - 1:  # after DDP's bucket rebuild
            self.memory.set(index, signature, {"estimates": grad.clone(), "averages": mean.clone()})
        return mean

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        memory = self._memory_of(index, signature, grad)
        g_i, g = memory["estimates"], memory["averages"]
        mean_c, own_c = self._exchange(index, grad - g_i, rank, world)
        g_i.add_(own_c)
        g.add_(mean_c)
        return g.clone()


class DianaHookState(CompressionHookState):
    r"""DIANA for DDP: a gradient shift per rank and bucket, learnt from compressed differences.

    Rank :math:`i` keeps :math:`h_i`, every rank keeps :math:`h = \frac1n\sum_i h_i`:

    .. math::
        \hat\Delta_i = \mathcal C_i(x_i - h_i), \qquad
        \hat g = h + \frac1n\sum_i \hat\Delta_i, \qquad
        h_i \leftarrow h_i + \alpha\hat\Delta_i, \qquad h \leftarrow h + \frac\alpha n\sum_i\hat\Delta_i .

    :math:`\hat g` is unbiased for unbiased :math:`\mathcal C`; :math:`\alpha \le 1/(\omega + 1)`,
    by default :math:`\alpha = 1/(\omega + 1)` with :math:`\omega` from
    ``compressor.theory(n, d)`` at each bucket's size d.

    .. note:: The last warm-up step initialises :math:`h_i` with the rank's uncompressed gradient
       and :math:`h` with their mean (the paper allows :math:`h_i^0 = \nabla f_i(x^0)`); a bucket
       whose memory restarts starts from :math:`h_i = h = 0`.

    Args:
        alpha: shift stepsize in (0, 1]; ``None`` (default): :math:`1/(\omega+1)`.

    References:
        Mishchenko, Gorbunov, Takáč, Richtárik, Distributed learning with compressed gradient
        differences, 2019, Alg. 1.
    """

    __slots__ = ("alpha", "alphas")
    _memories = ("shifts", "shift_means")

    def __init__(self, compressor: str | Compressor = "identity", *, alpha: float | None = None, **kwargs: Any) -> None:
        super().__init__(compressor, **kwargs)
        if alpha is not None:
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) <= 1.0:
                raise ConfigError(
                    f"DianaHookState alpha must be a number in (0, 1] or None; got {alpha!r}. "
                    "Use None for the theory default 1/(omega+1)."
                )
            alpha = float(alpha)
        self.alpha = alpha
        self.alphas: dict[tuple[int, int], float] = {}  # (n, d) -> 1/(omega+1)

    @property
    def shifts(self) -> dict[int, torch.Tensor]:
        """:math:`h_i` per bucket index."""
        return self.memory.tensors["shifts"]

    @property
    def shift_means(self) -> dict[int, torch.Tensor]:
        """:math:`h` per bucket index."""
        return self.memory.tensors["shift_means"]

    def alpha_for(self, n: int, d: int) -> float:
        """The shift stepsize used for a bucket of ``d`` entries over ``n`` ranks."""
        if self.alpha is not None:
            return self.alpha
        key = (int(n), int(d))
        if key not in self.alphas:
            self.alphas[key] = _theory_alpha(self.compressor, n, d)
        return self.alphas[key]

    def _warmup(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        mean = super()._warmup(index, signature, grad, rank, world)
        if self.step == self.warmup_steps - 1:  # after DDP's bucket rebuild
            self.memory.set(index, signature, {"shifts": grad.clone(), "shift_means": mean.clone()})
        return mean

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        alpha = self.alpha_for(world, grad.numel())
        memory = self._memory_of(index, signature, grad)
        h_i, h = memory["shifts"], memory["shift_means"]
        mean_c, own_c = self._exchange(index, grad - h_i, rank, world)
        out = h + mean_c
        h_i.add_(own_c, alpha=alpha)
        h.add_(mean_c, alpha=alpha)
        return out


# ---------------------------------------------------------------------------- hooks
def compressed_allreduce_hook(
    state: CompressionHookState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """DDP hook: average the bucket's compressed gradients (the state's class chooses the update).

    ``model.register_comm_hook(state, compressed_allreduce_hook)``; works with every state of this
    module (plain, EF, EF21, DIANA).
    """
    return _run(state, bucket, CompressionHookState)


def ef_hook(state: EFHookState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP hook: error feedback (see :class:`EFHookState`)."""
    return _run(state, bucket, EFHookState)


def ef21_hook(state: EF21HookState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP hook: EF21 (see :class:`EF21HookState`)."""
    return _run(state, bucket, EF21HookState)


def diana_hook(state: DianaHookState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP hook: DIANA (see :class:`DianaHookState`)."""
    return _run(state, bucket, DianaHookState)


#: Method name -> (state class, hook), for configs and command lines.
METHODS: dict[str, tuple[type[CompressionHookState], Any]] = {
    "mean": (CompressionHookState, compressed_allreduce_hook),
    "ef": (EFHookState, ef_hook),
    "ef21": (EF21HookState, ef21_hook),
    "diana": (DianaHookState, diana_hook),
}


def register(model: Any, compressor: str | Compressor, method: str = "mean", **kwargs: Any) -> CompressionHookState:
    """Build the state of ``method`` (``"mean"``, ``"ef"``, ``"ef21"``, ``"diana"``), bind it to the
    DDP ``model``, register its hook and return the state. ``kwargs`` go to the state's constructor."""
    if method not in METHODS:
        raise ConfigError(f"unknown DDP hook method {method!r}; choose one of {', '.join(METHODS)}.")
    cls, hook = METHODS[method]
    kwargs.setdefault("process_group", getattr(model, "process_group", None))
    state = cls(compressor, **kwargs).bind(model)
    model.register_comm_hook(state, hook)
    return state


def _run(state: CompressionHookState, bucket: Any, expected: type) -> torch.futures.Future[torch.Tensor]:
    if not isinstance(state, expected):
        raise InputTypeError(
            f"this hook needs a {expected.__name__}; got {type(state).__name__}. Register the hook "
            f"that matches the state (see commpress.integrations.ddp.METHODS) or compressed_allreduce_hook."
        )
    rank, world = rank_and_world(state.process_group)
    buf = bucket.buffer()
    index = int(bucket.index())
    grad = buf.detach() if buf.dtype in _WORK_DTYPES else buf.detach().to(torch.float32)
    signature, spans = state._layout(bucket, index, grad.numel())
    if spans is not None:  # canonical order: the parameters' slices concatenated (a copy, no index)
        grad = torch.cat([grad[start : start + size] for start, size in spans])
    try:
        if state.step < state.warmup_steps:
            out = state._warmup(index, signature, grad, rank, world)
        else:
            out = state._compressed(index, signature, grad, rank, world)
    except CommpressError as err:
        err.add_note(
            f"while compressing DDP bucket {index} ({grad.numel()} entries) at step {state.step} "
            f"on rank {rank} of {world} with {state.compressor!r}"
        )
        raise
    out = out.to(buf.dtype)
    if spans is None:
        buf.copy_(out)
    else:
        offset = 0
        for start, size in spans:
            buf[start : start + size].copy_(out[offset : offset + size])
            offset += size
    if bucket.is_last():
        state._end_step(index)
    fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    fut.set_result(buf)
    return fut


# ---------------------------------------------------------------------------- helpers
def _raise_collective_failure(error: CommpressError | None, index: int, rank: int) -> None:
    """Every rank raises when any rank could not compress: its own error, or a DistributedError."""
    if error is not None:
        raise error
    raise DistributedError(
        f"another rank failed to compress DDP bucket {index} (see its error; rank {rank} had no error). "
        "Training stops on every rank together; a non-finite gradient usually means the run diverged."
    )


def _theory_alpha(compressor: Compressor, n: int, d: int) -> float:
    try:
        omega = compressor.theory(n, d).omega
    except NotImplementedError:
        omega = None
    if omega is None or not 0.0 <= float(omega) < float("inf"):
        raise ConfigError(
            f"DianaHookState needs the variance constant omega of {compressor!r} at (n, d) = ({n}, {d}) "
            f"for its default alpha = 1/(omega+1); the compressor reports omega={omega}. "
            "Pass alpha= explicitly (0 < alpha <= 1)."
        )
    return 1.0 / (1.0 + float(omega))


def _check_compressor(compressor: Any) -> Compressor:
    if isinstance(compressor, Compressor):
        return compressor
    if not isinstance(compressor, str):
        raise InputTypeError(
            f"compressor must be a registered name or a Compressor instance; got {type(compressor).__name__}. "
            "Use e.g. 'cq' or commpress.compressors.make('cq', levels=3)."
        )
    return make(compressor)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputTypeError(f"seed must be an integer in [0, 2**63); got {seed!r} ({type(seed).__name__}).")
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"seed must be in [0, 2**63); got {seed}. Use commpress.derive_seed(base, ...).")
    return seed


def _check_warmup(warmup_steps: Any) -> int:
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 2:
        raise ConfigError(
            f"warmup_steps must be an integer >= 2; got {warmup_steps!r}. DDP rebuilds its gradient "
            "buckets after the first step, so per-bucket memory and compression start at step 2 at the earliest."
        )
    return warmup_steps


# ---------------------------------------------------------------------------- old _collectives (synchronous)
#: Bytes of the length word every rank sends before its payload.
LENGTH_BYTES = 8


def rank_and_world(group: Any) -> tuple[int, int]:
    """(rank in ``group``, size of ``group``); ``group=None`` is the default group."""
    if not dist.is_available() or not dist.is_initialized():
        raise DistributedError(
            "the commpress DDP hooks need an initialised torch.distributed process group; "
            "call torch.distributed.init_process_group(...) before training with the hook."
        )
    rank = dist.get_rank(group)
    if rank < 0:
        raise DistributedError(
            f"this process is not a member of the hook's process group {group!r}; "
            "register the hook with the group the DDP model was built with."
        )
    return rank, dist.get_world_size(group)


def plain_mean(x: torch.Tensor, group: Any, world: int) -> tuple[torch.Tensor, int]:
    """The uncompressed mean over ranks, computed as PyTorch's ``allreduce_hook`` does (divide, then sum)."""
    total = x.div(world)
    dist.all_reduce(total, group=group)
    return total, total.numel() * total.element_size()


def summed_mean(x: torch.Tensor | None, d: int, group: Any, world: int, like: torch.Tensor) -> tuple[torch.Tensor | None, int]:
    """Mean over ranks of the ranks' (decoded) rows ``x`` (``(d,)``): sum with all-reduce, divide.

    One extra entry carries the failure flag: ``x=None`` marks this rank as failed. Returns
    ``None`` for the mean when any rank failed.
    """
    total = like.new_zeros(d + 1)
    if x is None:
        total[d] = 1.0
    else:
        total[:d] = x
    dist.all_reduce(total, group=group)
    sent = total.numel() * total.element_size()
    if bool(total[d] != 0):
        return None, sent
    return total[:d].div_(world), sent


def all_gather_bytes(
    payload: bytes | None, group: Any, world: int, device: torch.device
) -> tuple[list[bytes] | None, int]:
    """Every rank's ``payload``, in rank order (``None`` if any rank passed ``None``: it failed),
    and the bytes this rank put into the all-gathers."""
    length = torch.tensor([-1 if payload is None else len(payload)], dtype=torch.int64, device=device)
    sizes = [int(v) for v in gather_int64(length, group, world)[:, 0].tolist()]
    if min(sizes) < 0:
        return None, LENGTH_BYTES
    width = max(sizes)
    if width == 0:  # nobody sends anything this round (e.g. importance sampling drew no one here)
        return [b""] * world, LENGTH_BYTES
    gathered = gather_padded_bytes(payload or b"", width, group, world, device)
    payloads = [t[:size].numpy().tobytes() for t, size in zip(gathered, sizes)]
    return payloads, LENGTH_BYTES + width
