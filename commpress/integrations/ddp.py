r"""DDP communication hooks that compress gradient buckets with any commpress compressor.

In the manner of PyTorch's PowerSGD hook: a state object and a hook function,

>>> state = CompressionHookState("cq", seed=0)       # or EFHookState, EF21HookState, DianaHookState
>>> state.bind(model)                                # optional: see "Bucket layouts" below
>>> model.register_comm_hook(state, compressed_allreduce_hook)

or in one call ``state = register(model, "cq", method="ef21")``.

Each rank is one client of the compressor: client index = its rank in the process group,
``n`` = the group's size. At step ``t`` the flat gradient ``x`` of bucket ``b`` is sent as
``compressor.encode(x[None], seed_tb, clients=[rank], n=world)`` with the round seed
``seed_tb = derive_seed(state.seed, t, b)``, identical on every rank, so correlated compressors
(CQ, PermK, ...) draw their shared randomness without talking. Every rank decodes all ranks'
messages and averages them:

- compressors whose messages can be summed while compressed (``compressor.summable``) all-reduce
  the decoded rows;
- all others all-gather the real payloads (the lengths, then the bytes padded to the longest;
  no pickling) and decode them locally.

The step counter ``t`` advances after the last bucket of each backward pass. For the first
``warmup_steps`` steps the hooks do a plain uncompressed all-reduce. DDP rebuilds its buckets
after the first step; a state bound to the model (below) keeps its memory through the rebuild, so
it compresses from step 0 (``warmup_steps=None``, the default, means 0 for a bound state and 2 for
an unbound one, whose memory would restart at zero at the rebuild). PyTorch's PowerSGD hook must
send its first two steps dense (``start_powerSGD_iter >= 2``) because its memory is keyed by the
bucket index alone; on a slow link those two fp32 steps can cost more than all compressed steps of
a short run (measured: 7.3 s of PowerSGD rank 1's 11.8 s to the loss target of
``benchmarks/slow_link.py``). States save with ``torch.save`` without their process group
(load with ``torch.load(..., weights_only=False)``; the group becomes the default group, or set
``state.process_group``).

**Bucket layouts.** DDP orders a bucket's parameters differently before and after its rebuild
(and a freshly built DDP model, e.g. after a restart, starts again from its initial layout). A
state *bound* to the model (``state.bind(model)``; :func:`register` does it) knows every
parameter's position in ``model.parameters()``: it compresses each bucket with its parameters
in that canonical order, and its per-bucket memory (keyed by ``bucket.index()``) follows the
parameters when DDP regroups them. A resumed run is then identical to the uninterrupted one
whenever the resumed model's buckets hold the same parameters (e.g. every model of one bucket).
An unbound state compresses buckets as laid out and restarts a bucket's memory at zero when its
layout (the sizes of its parameters, in order) changes.

**Asynchronous.** A hook launches its collective (``async_op=True``) and returns at once a
:class:`torch.futures.Future` that completes with the averaged bucket when the collective has
completed and its result has been decoded, reduced and folded into the memory (EF residual, EF21
``g_i``, DIANA ``h_i``), as PyTorch's ``allreduce_hook`` and PowerSGD hook do, so DDP goes on
with the backward pass while the bucket travels. Encoding (and the round seed, and the step
counter) stay in the hook, on DDP's thread, in bucket order; decoding runs in the collective's
completion callback (on gloo, on the process group's worker thread). An error there (a failed
rank, a corrupted payload, a dead peer) completes the future with that error, so
``loss.backward()`` raises it on every rank instead of hanging: a ``RuntimeError`` whose message
starts with the original exception's class and message (``DistributedError: another rank failed
...``) and its notes (which bucket, step and rank). Called by hand, ``hook(state, bucket).wait()``
raises the same; wait for a bucket's future before calling the hook on that bucket again (DDP does).

One collective per bucket: summable compressors all-reduce their decoded rows (on the device; a
failure flag rides along); all others all-gather fixed-size byte frames (a length word, then the
payload padded to the longest payload, which every rank computes from the compressor's layout
without communicating). Compressors whose payload size depends on the data (``theory(n, d)``
declares ``bits_data_dependent``, or ``header_fields``) or that have no layout first exchange
their lengths with a small blocking all-gather, then gather the payloads asynchronously. A
collective is never launched from a completion callback: ranks must issue a group's collectives
in one order, and a callback's timing differs between ranks.

**On a GPU (NCCL)** the summable path stays on the device: no host read in the hook or its
callback (a rank's failure flag is copied to the host asynchronously and checked at the first hook
of the next step, where every rank raises together; meanwhile the averaged bucket is NaN, and a
failure in the very last step shows only as NaN gradients). The
byte path needs the host where the compressor does: ``encode`` returns ``bytes`` and ``decode``
reads ``bytes``, so the frames are copied to the device before the gather and back to the host in
the callback. NCCL completes its futures when the work is queued, so that copy waits for the
gather inside the hook: with NCCL only summable compressors overlap communication with the
backward pass. Every rank decodes the other ranks' messages one at a time into a running sum.
For speed on Linux, call :func:`commpress.keep_freed_memory` once in each training process: large
buffers are then reused between steps instead of being page-faulted anew (see
:mod:`commpress._malloc`). Decoding on gloo's worker threads allocates from their own glibc arenas,
which unmap a heap as soon as it is free whatever the trim threshold: with buckets of tens of MB
also set ``MALLOC_ARENA_MAX=1`` in the environment (measured: a 10^7-parameter MLP with DIANA and a
4-bit block quantizer over 100 Mbit/s, 1.84 s per step without it, 1.2 s with it, 1.4 s for the
former synchronous hooks).
"""

import threading
import warnings
from typing import Any, ClassVar, NamedTuple

import torch
import torch.distributed as dist

from commpress._rng import SEED_LIMIT, derive_seed
from commpress.compressors import Compressor, make
from commpress.compressors.base import Context
from commpress.errors import CommpressError, ConfigError, DistributedError, InputTypeError, PayloadError
from commpress.integrations._collectives import (
    Launched,
    gather_bytes,
    gather_framed,
    plain_mean,
    rank_and_world,
    summed_mean,
)
from commpress.integrations._memory import BucketMemory, Signature, has_keys
from commpress.integrations._traffic import Traffic
from commpress.wire import payload_bytes

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
_TRANSIENT = ("process_group", "_param_keys", "_perms", "_warned", "_fixed_size", "_deferred", "_lock")


class _Deferred(NamedTuple):
    """A failure flag of a device all-reduce, copied to the host without waiting."""

    step: int
    index: int
    rank: int
    error: CommpressError | None
    flag: torch.Tensor  # (1,) on the host, filled once ``event`` has passed
    event: Any  # torch.cuda.Event


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
        warmup_steps: uncompressed steps first (an integer >= 0), or None (default): 0 once the state
            is bound to the model (its memory follows DDP's bucket rebuild after step 1), 2 for a
            state used unbound (decided at its first bucket).

    Attributes:
        step: steps completed (one per backward pass).
        traffic: bytes this rank sent (:class:`~commpress.integrations._traffic.Traffic`).

    Saved with ``torch.save`` (everything but the process group, which becomes the default
    group on load, and the binding to the model: bind again after loading); load with
    ``torch.load(path, weights_only=False)``, from trusted files only.
    """

    __slots__ = ("process_group", "compressor", "seed", "warmup_steps", "step", "traffic", "memory",
                 "_param_keys", "_perms", "_warned", "_fixed_size", "_deferred", "_lock")
    #: Names of the per-bucket memory tensors of this method.
    _memories: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        compressor: str | Compressor = "identity",
        *,
        process_group: Any = None,
        seed: int = 0,
        warmup_steps: int | None = None,
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
        self._fixed_size: dict[tuple[int, int, torch.dtype], bool] = {}  # (n, d, dtype) -> sizes from the layout?
        self._deferred: list[_Deferred] = []  # failure flags of device all-reduces, checked next step
        self._lock = threading.Lock()

    def bind(self, model: torch.nn.Module) -> "CompressionHookState":
        """Know the parameters of ``model`` (the DDP model or its module): canonical bucket order
        and memory that follows DDP's regrouping. Call again after loading a saved state."""
        if not isinstance(model, torch.nn.Module):
            raise InputTypeError(f"bind expects the DDP model (a torch.nn.Module); got {type(model).__name__}.")
        self._param_keys = {id(p): i for i, p in enumerate(model.parameters())}
        self._perms = {}
        if self.warmup_steps is None:  # bound: memory follows the parameters through DDP's rebuild
            self.warmup_steps = 0
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
    # Each method launches the bucket's collective and returns a Launched: the collective's future
    # and the steps that run when it completes (decode, mean, memory update). Everything that reads
    # or changes the state's bookkeeping (step, seeds, traffic, memory layout) runs in the hook;
    # the steps only change the contents of this bucket's tensors.
    def _warmup(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        """Uncompressed mean (the first ``warmup_steps`` steps)."""
        launched, sent = plain_mean(grad, self.process_group, world)
        self.traffic.add(sent, sent)
        return launched

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        """The averaged bucket after the warm-up. Subclasses add their memory here."""
        return self._exchange(index, grad, rank, world).then(lambda means: means[0])

    def _end_step(self, last_index: int) -> None:
        """After the last bucket: release memory of bucket indices DDP no longer has."""
        self.memory.forget_after(last_index)
        self.step += 1
        self.traffic.end_step()

    def _exchange(self, index: int, x: torch.Tensor, rank: int, world: int) -> Launched:
        r"""Send :math:`\mathcal C_{rank}(x)`; the value is (the mean of all ranks' decoded messages, this rank's).

        ``x`` is read here only: the caller may change it before the collective completes.
        """
        seed = self.round_seed(index)
        step = self.step
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
            launched, wire = summed_mean(own, x.numel(), self.process_group, world, x)
            if error is None:
                self.traffic.add(int(bits[0]) // 8, wire)
            if own is None:  # the memories go on with NaN until every rank raises (see _failed)
                own = torch.full_like(x, float("nan"))

            def reduced(value: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
                mean, flag = value
                self._failed(flag, error, step, index, rank)
                return mean, own

            return launched.then(reduced)
        payload = None
        try:
            payload = C.encode(X, seed, clients=[rank], n=world)[0]
        except CommpressError as err:  # take part in the all-gather anyway, flagged
            error = err
        widths = self._payload_sizes(seed, x, world)
        if widths is None:  # sizes not known in advance: lengths first (blocking), then the payloads
            launched, wire = gather_bytes(payload, self.process_group, world, x.device)
        else:
            width = max(widths)
            if payload is not None and len(payload) > width:
                error = PayloadError(
                    f"{C!r} encoded {len(payload)} bytes for rank {rank} but its layout allows {width} at "
                    f"(n, d) = ({world}, {x.numel()}): its encode and layout disagree. Fix the compressor, or "
                    "declare theory(n, d).extras['bits_data_dependent'] = True so the hook exchanges lengths."
                )
                payload = None
            launched, wire = gather_framed(payload, width, self.process_group, world, x.device)
        if payload is not None:
            self.traffic.add(len(payload), wire)
        d, dtype, device = x.numel(), x.dtype, x.device

        def decoded(payloads: list[bytes] | None) -> tuple[torch.Tensor, torch.Tensor]:
            if payloads is None:
                _raise_collective_failure(error, index, rank)
            # Decoded one rank at a time into a running sum: no (world, d) matrix (a 6M-entry bucket
            # of 2 ranks would be 50 MB, allocated afresh every step).
            total, own = None, None
            for r, message in enumerate(payloads):
                row = C.decode([message], seed, d, clients=[r], n=world, dtype=dtype, device=device)[0]
                if r == rank:
                    own = row
                if total is None:
                    total = row.clone() if r == rank else row  # the sum must not alias this rank's row
                else:
                    total.add_(row)
            return total.div_(world), own

        return launched.then(decoded)

    def _payload_sizes(self, seed: int, x: torch.Tensor, world: int) -> list[int] | None:
        """Every rank's payload size at this round, from the compressor's layout alone (what its
        decoder reads first), or None when the sizes depend on the data or there is no layout.
        The same on every rank: a function of the compressor, seed, n, d and dtype."""
        C, d = self.compressor, x.numel()
        key = (world, d, x.dtype)
        if self._fixed_size.get(key) is False:
            return None
        ctx = Context(seed=seed, n=world, d=d, clients=torch.arange(world), dtype=x.dtype, device=torch.device("cpu"))
        try:
            if key not in self._fixed_size:
                self._fixed_size[key] = not C.theory(world, d).extras.get("bits_data_dependent")
                if not self._fixed_size[key]:
                    return None
            if C.header_fields(ctx):
                return None
            sizes = [-1] * world
            for fields, rows in C.layout(ctx, None):
                for r in rows.tolist():
                    sizes[r] = payload_bytes(fields)
        except Exception:  # noqa: BLE001 - no layout (a compressor with its own wire format): exchange lengths
            self._fixed_size[key] = False
            return None
        return sizes if min(sizes) >= 0 else None

    def _failed(self, flag: torch.Tensor, error: CommpressError | None, step: int, index: int, rank: int) -> None:
        """The failure flag of an all-reduce: raise now (host memory), or, on a GPU, copy it to the host
        without waiting and raise at the first hook of the next step (:meth:`_check_deferred`)."""
        if flag.device.type != "cuda":
            if bool(flag[0] != 0):
                _raise_collective_failure(error, index, rank)
            return
        host = flag.to("cpu", non_blocking=True)  # pinned: the copy waits for the all-reduce, not us
        event = torch.cuda.Event()
        event.record()
        with self._lock:
            self._deferred.append(_Deferred(step, index, rank, error, host, event))

    def _check_deferred(self) -> None:
        """Raise on every rank, together, if an all-reduce of an earlier step carried a failure flag."""
        if not self._deferred:
            return
        with self._lock:
            due = [entry for entry in self._deferred if entry.step < self.step]
            self._deferred = [entry for entry in self._deferred if entry.step >= self.step]
        for entry in due:
            entry.event.synchronize()
            if bool(entry.flag[0] != 0):
                with self._lock:
                    self._deferred = []
                try:
                    _raise_collective_failure(entry.error, entry.index, entry.rank)
                except CommpressError as err:
                    err.add_note(f"(found at the first hook of step {self.step}: bucket {entry.index} of step "
                                 f"{entry.step} averaged to NaN on every rank)")
                    raise


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

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        e = self._memory_of(index, signature, grad)["residuals"]
        e.add_(grad)

        def update(means: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            mean, own = means
            e.sub_(own)
            return mean

        return self._exchange(index, e, rank, world).then(update)


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

    def _warmup(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        launched = super()._warmup(index, signature, grad, rank, world)
        if self.step == self.warmup_steps - 1:  # after DDP's bucket rebuild
            return _keep_mean(self.memory, index, signature, ("estimates", "averages"), grad, launched)
        return launched

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        memory = self._memory_of(index, signature, grad)
        g_i, g = memory["estimates"], memory["averages"]

        def update(means: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            mean_c, own_c = means
            g_i.add_(own_c)
            g.add_(mean_c)
            return g.clone()

        return self._exchange(index, grad - g_i, rank, world).then(update)


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

    def _warmup(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        launched = super()._warmup(index, signature, grad, rank, world)
        if self.step == self.warmup_steps - 1:  # after DDP's bucket rebuild
            return _keep_mean(self.memory, index, signature, ("shifts", "shift_means"), grad, launched)
        return launched

    def _compressed(self, index: int, signature: Signature, grad: torch.Tensor, rank: int, world: int) -> Launched:
        alpha = self.alpha_for(world, grad.numel())
        memory = self._memory_of(index, signature, grad)
        h_i, h = memory["shifts"], memory["shift_means"]

        def update(means: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            mean_c, own_c = means
            out = h + mean_c
            h_i.add_(own_c, alpha=alpha)
            h.add_(mean_c, alpha=alpha)
            return out

        return self._exchange(index, grad - h_i, rank, world).then(update)


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
    state._check_deferred()
    buf = bucket.buffer()
    index = int(bucket.index())
    grad = buf.detach() if buf.dtype in _WORK_DTYPES else buf.detach().to(torch.float32)
    signature, spans = state._layout(bucket, index, grad.numel())
    if spans is not None:  # canonical order: the parameters' slices concatenated (a copy, no index)
        grad = torch.cat([grad[start : start + size] for start, size in spans])
    if state.warmup_steps is None:  # unbound: dense until DDP has rebuilt its buckets
        state.warmup_steps = 2
    step = state.step
    where = lambda: (f"while compressing DDP bucket {index} ({grad.numel()} entries) at step {step} "  # noqa: E731
                     f"on rank {rank} of {world} with {state.compressor!r}")
    try:
        if state.step < state.warmup_steps:
            launched = state._warmup(index, signature, grad, rank, world)
        else:
            launched = state._compressed(index, signature, grad, rank, world)
    except CommpressError as err:
        err.add_note(where())
        raise
    if bucket.is_last():
        state._end_step(index)

    def write_back(out: torch.Tensor) -> torch.Tensor:  # the averaged bucket, into DDP's buffer
        out = out.to(buf.dtype)
        if spans is None:
            buf.copy_(out)
        else:
            offset = 0
            for start, size in spans:
                buf[start : start + size].copy_(out[offset : offset + size])
                offset += size
        return buf

    def annotate(err: BaseException) -> None:
        note = where()
        if note not in getattr(err, "__notes__", ()):
            err.add_note(note)

    return launched.then(write_back).to_future(annotate)


# ---------------------------------------------------------------------------- helpers
def _raise_collective_failure(error: CommpressError | None, index: int, rank: int) -> None:
    """Every rank raises when any rank could not compress: its own error, or a DistributedError."""
    if error is not None:
        raise error
    raise DistributedError(
        f"another rank failed to compress DDP bucket {index} (see its error; rank {rank} had no error). "
        "Training stops on every rank together; a non-finite gradient usually means the run diverged."
    )


def _keep_mean(memory: BucketMemory, index: int, signature: Signature, names: tuple[str, str],
               grad: torch.Tensor, launched: Launched) -> Launched:
    """Last warm-up step of EF21 / DIANA: the rank's gradient and (once it arrives) the mean become the
    memory. The memory is laid out here, in the hook; the callback only fills the mean in."""
    mean_memory = torch.empty_like(grad)
    memory.set(index, signature, {names[0]: grad.clone(), names[1]: mean_memory})

    def keep(mean: torch.Tensor) -> torch.Tensor:
        mean_memory.copy_(mean)
        return mean

    return launched.then(keep)


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


def _check_warmup(warmup_steps: Any) -> int | None:
    if warmup_steps is None:
        return None
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ConfigError(
            f"warmup_steps must be None (0 for a state bound to the model, 2 unbound) or an integer >= 0; "
            f"got {warmup_steps!r}."
        )
    return warmup_steps
