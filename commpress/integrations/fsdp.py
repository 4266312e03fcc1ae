r"""Compressed reduce-scatter for PyTorch's sharded data parallelism (FSDP2, ``fully_shard``).

FSDP2 reduces each parameter group's gradients with one reduce-scatter: every rank holds the full
(unsharded) gradient of the group, flattened as ``world`` equal chunks, chunk ``j`` being rank
``j``'s shard, and rank ``j`` receives the mean (or sum) over ranks of chunk ``j``. PyTorch lets a
user replace that collective (``FSDPModule.set_custom_reduce_scatter``, torch >= 2.10);
:class:`CompressedReduceScatter` replaces it with a compressed one:

1. rank :math:`i` compresses each chunk :math:`x_{i\to j}` it holds for rank :math:`j`, as client
   :math:`i` of :math:`n` = ``world`` clients with the round seed
   :math:`s_{tgj}` = ``derive_seed(seed, t, g, j)`` (step :math:`t`, group :math:`g`, destination
   :math:`j`), identical on every rank, so correlated compressors (CQ, PermK, ...) need no talk;
2. the payloads travel with one ``all_to_all`` (their lengths first, with a small ``all_to_all``
   of int64: payload sizes may depend on the data);
3. rank :math:`j` decodes the :math:`n` messages it received and averages them into its shard.

PermK is the natural case: with the same seed on every rank, the :math:`n` senders' blocks of a
chunk are disjoint, so each rank receives from each peer only :math:`1/n` of its chunk, a
reduce-scatter that moves :math:`1/n` of the dense one's bytes and is exact on average.

Methods (memory per chunk, as the DDP hooks of :mod:`commpress.integrations.ddp` keep per bucket):

- ``"mean"``: :math:`\hat g_j = \frac1n\sum_i \mathcal C(x_{i\to j})`;
- ``"ef"`` (EF / MEM-SGD; Stich et al. 2018): :math:`p = e_{i\to j} + x_{i\to j}`,
  :math:`c = \mathcal C(p)`, :math:`e_{i\to j} \leftarrow p - c`;
- ``"ef21"`` (Richtárik et al. 2021, Alg. 1): :math:`c = \mathcal C(x_{i\to j} - g_{i\to j})`,
  :math:`g_{i\to j} \mathrel{+}= c`; rank :math:`j` keeps :math:`g_j = \frac1n\sum_i g_{i\to j}` and
  returns it;
- ``"diana"`` (Mishchenko et al. 2019, Alg. 1): :math:`c = \mathcal C(x_{i\to j} - h_{i\to j})`,
  :math:`\hat g_j = h_j + \frac1n\sum_i c`, :math:`h_{i\to j} \mathrel{+}= \alpha c`,
  :math:`h_j \mathrel{+}= \frac\alpha n\sum_i c`, :math:`\alpha = 1/(\omega+1)` by default.

The first ``warmup_steps`` steps (default 0: FSDP's parameter groups never change, so nothing
needs to settle first) use FSDP's own dense reduce-scatter; EF21 and DIANA initialise their memories
from the last of them (:math:`g_{i\to j} = x_{i\to j}`, :math:`g_j` = the reduced shard), as the
papers' :math:`g_i^0 = \nabla f_i(x^0)`, and start from zero without one (EF21's Alg. 1 allows any
:math:`g_i^0`). On a slow link a dense step costs as much as many compressed ones: the default
sends none.

>>> from torch.distributed.fsdp import fully_shard
>>> for block in model.blocks: fully_shard(block)
>>> fully_shard(model)
>>> compression = commpress.integrations.fsdp.register(model, "sign", method="ef")
>>> ...train...
>>> torch.save({"model": model.state_dict(), "compression": compression.state_dict()}, f"ckpt{rank}.pt")

Each rank saves its own compression state (its memories are its own) and loads it back with
:meth:`FSDPCompression.load_state_dict` after ``register`` on the rebuilt model: the resumed run
continues with the same iterates.

FSDP also all-gathers every group's parameters before its forward and again before its backward;
``register(..., params="int8")`` (or ``"int4"``, ``"bf16"``, ``"none"``) quantizes those too, with a
:class:`~commpress.integrations.fsdp_params.CompressedAllGather` per group (blockwise absmax
quantization of the weights, as ZeRO++'s qwZ; see :mod:`commpress.integrations.fsdp_params`).
The default ``params=None`` keeps FSDP's own all-gather.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.fsdp._fully_shard._fsdp_api import ReduceScatter

from commpress._rng import derive_seed
from commpress.compressors import Compressor
from commpress.errors import CommpressError, ConfigError, DistributedError, InputTypeError
from commpress.integrations._traffic import Traffic
from commpress.integrations.ddp import _check_compressor, _check_seed, _theory_alpha
from commpress.integrations.fsdp_params import CompressedAllGather, _check_mode

__all__ = ["METHODS", "CompressedReduceScatter", "FSDPCompression", "register"]

#: The methods, and the memories each keeps per parameter group (sender side ``(n, chunk)``,
#: receiver side ``(chunk,)``).
METHODS: dict[str, tuple[str, ...]] = {
    "mean": (),
    "ef": ("residuals",),
    "ef21": ("estimates", "average"),
    "diana": ("shifts", "shift_mean"),
}
_WORK_DTYPES = (torch.float32, torch.float64)


class CompressedReduceScatter(ReduceScatter):
    """One FSDP parameter group's reduce-scatter, compressed (see the module's documentation).

    Args:
        compressor: a registered name or a :class:`~commpress.compressors.Compressor`.
        method: ``"mean"``, ``"ef"``, ``"ef21"`` or ``"diana"``.
        seed: the run seed (the round seeds derive from it, the step and ``group_index``).
        group_index: this parameter group's index, the same on every rank (``register`` numbers the
            groups in module order).
        warmup_steps: dense steps before compression starts (>= 0, default 0; EF21 / DIANA need
            >= 1 to start from the dense gradient, else their memories start at zero).
        alpha: DIANA's shift stepsize in (0, 1]; ``None``: :math:`1/(\\omega+1)`.

    Attributes:
        step: reduce-scatters done (one per backward pass of the group).
        traffic: bytes this rank sent (:class:`~commpress.integrations._traffic.Traffic`).
        memory: the method's tensors (empty before the first compressed step).
    """

    def __init__(self, compressor: str | Compressor = "identity", method: str = "mean", *, seed: int = 0,
                 group_index: int = 0, warmup_steps: int = 0, alpha: float | None = None) -> None:
        if method not in METHODS:
            raise ConfigError(f"FSDP compression method must be one of {list(METHODS)}; got {method!r}.")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an integer >= 0; got {warmup_steps!r}.")
        if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                                  or not 0.0 < float(alpha) <= 1.0):
            raise ConfigError(f"alpha must be a number in (0, 1] or None (1/(omega+1)); got {alpha!r}.")
        self.compressor = _check_compressor(compressor)
        self.method = method
        self.seed = _check_seed(seed)
        self.group_index = int(group_index)
        self.warmup_steps = warmup_steps
        self.alpha = None if alpha is None else float(alpha)
        self.step = 0
        self.traffic = Traffic()
        self.memory: dict[str, torch.Tensor] = {}
        #: the group's compressed parameter all-gather, whose traffic step this closes (``register``)
        self.param_gather: CompressedAllGather | None = None

    # ------------------------------------------------------------------ FSDP's interface
    def allocate(self, size: Any, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A fresh buffer (FSDP's default allocation)."""
        return torch.empty(*size, dtype=dtype, device=device)

    def __call__(self, output_tensor: torch.Tensor, input_tensor: torch.Tensor, group: dist.ProcessGroup,
                 op: Any, async_op: bool = False) -> None:
        """``output_tensor`` = the reduced shard of this rank (the op over ranks of chunk ``rank``)."""
        world, rank = group.size(), group.rank()
        op_name = str(op).rsplit(".", 1)[-1].upper()
        if op_name not in ("AVG", "SUM"):
            raise ConfigError(f"the compressed reduce-scatter averages or sums; FSDP asked for {op}.")
        chunk = output_tensor.numel()
        if input_tensor.numel() != world * chunk:
            raise DistributedError(
                f"reduce-scatter input of {input_tensor.numel()} entries is not {world} chunks of {chunk}.")
        X = input_tensor.detach().reshape(world, chunk)
        X = X if X.dtype in _WORK_DTYPES else X.to(torch.float32)
        if self.step < self.warmup_steps:
            mean = self._dense(X, group, world)
            if self.step == self.warmup_steps - 1 and self.method in ("ef21", "diana"):
                self._start_memory(X.clone(), mean.clone())
        else:
            mean = self._compressed(X, group, world, rank)
        output_tensor.copy_(mean if op_name == "AVG" else mean * world)
        self.step += 1
        self.traffic.end_step()
        if self.param_gather is not None:  # the group's forward and backward gathers came before
            self.param_gather.traffic.end_step()
        return None

    # ------------------------------------------------------------------ the two paths
    def _dense(self, X: torch.Tensor, group: dist.ProcessGroup, world: int) -> torch.Tensor:
        out = X.new_empty(X.shape[1])
        dist.reduce_scatter_single(out, X.reshape(-1).contiguous(), op=dist.ReduceOp.SUM, group=group)
        sent = (world - 1) * X.shape[1] * X.element_size()
        self.traffic.add(sent, sent)
        return out.div_(world)

    def _start_memory(self, own: torch.Tensor, mean: torch.Tensor) -> None:
        names = METHODS[self.method]
        self.memory = {names[0]: own, names[1]: mean}

    def _memory(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        names = METHODS[self.method]
        if not names:
            return {}
        shapes = {names[0]: X.shape, **({names[1]: X.shape[1:]} if len(names) > 1 else {})}
        if set(self.memory) != set(names) or any(self.memory[k].shape != s for k, s in shapes.items()):
            self.memory = {k: X.new_zeros(s) for k, s in shapes.items()}  # first compressed step, or FSDP changed
        return self.memory

    def _compressed(self, X: torch.Tensor, group: dist.ProcessGroup, world: int, rank: int) -> torch.Tensor:
        memory = self._memory(X)
        if self.method == "ef":
            message = memory["residuals"].add_(X)
        elif self.method == "ef21":
            message = X - memory["estimates"]
        elif self.method == "diana":
            message = X - memory["shifts"]
        else:
            message = X
        own, mean = self._exchange(message, group, world, rank)
        if self.method == "ef":
            memory["residuals"].sub_(own)
            return mean
        if self.method == "ef21":
            memory["estimates"].add_(own)
            return memory["average"].add_(mean).clone()
        if self.method == "diana":
            alpha = self.alpha if self.alpha is not None else _theory_alpha(self.compressor, world, X.shape[1])
            out = memory["shift_mean"] + mean
            memory["shifts"].add_(own, alpha=alpha)
            memory["shift_mean"].add_(mean, alpha=alpha)
            return out
        return mean

    def _exchange(self, M: torch.Tensor, group: dist.ProcessGroup, world: int, rank: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Send :math:`\\mathcal C_{rank}(M_j)` to every rank ``j``; return (this rank's decoded rows
        ``(n, chunk)``, the mean of the messages received for this rank's shard ``(chunk,)``)."""
        C, chunk = self.compressor, M.shape[1]
        seeds = [derive_seed(self.seed, self.step, self.group_index, j) for j in range(world)]
        payloads: list[bytes] | None = None
        error: CommpressError | None = None
        try:  # one message per destination: each destination is its own round of n clients
            payloads = [C.encode(M[j : j + 1], seeds[j], clients=[rank], n=world)[0] for j in range(world)]
        except CommpressError as err:  # take part in the exchange anyway, flagged with length -1
            error = err
        lengths = torch.tensor([-1] * world if payloads is None else [len(p) for p in payloads], dtype=torch.int64)
        received = torch.empty(world, dtype=torch.int64)
        dist.all_to_all_single(received, lengths, group=group)
        if error is not None:
            raise error
        if bool((received < 0).any()):
            bad = (received < 0).nonzero().flatten().tolist()
            raise DistributedError(
                f"rank(s) {bad} failed to compress their FSDP gradient chunks for rank {rank} at step {self.step} "
                "(e.g. NaN or Inf in their gradients); every rank raises.")
        sent = torch.frombuffer(bytearray(b"".join(payloads)), dtype=torch.uint8) if sum(map(len, payloads)) \
            else torch.empty(0, dtype=torch.uint8)
        incoming = torch.empty(int(received.sum()), dtype=torch.uint8)
        dist.all_to_all_single(incoming, sent, received.tolist(), lengths.tolist(), group=group)
        to_others = sum(len(p) for j, p in enumerate(payloads) if j != rank)
        self.traffic.add(to_others, to_others + 8 * (world - 1))
        kw = {"dtype": M.dtype, "device": M.device}
        own = torch.cat([C.decode([payloads[j]], seeds[j], chunk, clients=[rank], n=world, **kw) for j in range(world)])
        data = incoming.numpy().tobytes()
        offsets = [0, *torch.cumsum(received, 0).tolist()]
        total = torch.zeros(chunk, **kw)
        for i in range(world):  # the n messages for this rank's shard, one per sender
            message = data[offsets[i] : offsets[i + 1]]
            total.add_(C.decode([message], seeds[rank], chunk, clients=[i], n=world, **kw)[0])
        return own, total.div_(world)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Step, traffic totals and memories (this rank's)."""
        return {"step": self.step, "method": self.method, "seed": self.seed,
                "traffic": {"steps": self.traffic.steps, "payload_bytes": self.traffic.payload_bytes,
                            "wire_bytes": self.traffic.wire_bytes},
                "memory": {k: v.clone() for k, v in self.memory.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (method and seed must match)."""
        if not isinstance(state, dict) or not {"step", "method", "seed", "memory"} <= set(state):
            raise ConfigError("load_state_dict expects the dict that CompressedReduceScatter.state_dict() returned.")
        if (state["method"], state["seed"]) != (self.method, self.seed):
            raise ConfigError(
                f"this state was saved with method={state['method']!r}, seed={state['seed']}; this reduce-scatter "
                f"has method={self.method!r}, seed={self.seed}. Register with the saved settings.")
        self.step = int(state["step"])
        for key, value in state.get("traffic", {}).items():
            setattr(self.traffic, key, int(value))
        self.memory = {k: v.clone() for k, v in state["memory"].items()}


class FSDPCompression:
    """The compressed reduce-scatters of a model's FSDP parameter groups (what :func:`register` returns).

    Attributes:
        comms: ``{module name: CompressedReduceScatter}``, one per FSDP module with parameters.
        gathers: ``{module name: CompressedAllGather}`` (empty with ``params=None``).
    """

    def __init__(self, comms: dict[str, CompressedReduceScatter],
                 gathers: dict[str, CompressedAllGather] | None = None) -> None:
        self.comms = comms
        self.gathers = gathers or {}

    @property
    def warmup_steps(self) -> int:
        """Dense steps before every group compresses."""
        return max(c.warmup_steps for c in self.comms.values())

    @property
    def traffic(self) -> Traffic:
        """The groups' traffic summed (steps: those of the first group, one per backward pass)."""
        total = Traffic()
        for c in self.comms.values():
            for key in ("payload_bytes", "wire_bytes", "last_payload_bytes", "last_wire_bytes"):
                setattr(total, key, getattr(total, key) + getattr(c.traffic, key))
        total.steps = next(iter(self.comms.values())).traffic.steps
        return total

    @property
    def payload_bytes(self) -> int:
        """Payload bytes this rank sent over all groups and steps."""
        return self.traffic.payload_bytes

    @property
    def param_traffic(self) -> Traffic:
        """The parameter all-gathers' traffic summed over groups (a step: every gather of one training
        step, closed by the group's reduce-scatter); zero with ``params=None``."""
        total = Traffic()
        for c in self.gathers.values():
            for key in ("payload_bytes", "wire_bytes", "last_payload_bytes", "last_wire_bytes"):
                setattr(total, key, getattr(total, key) + getattr(c.traffic, key))
        total.steps = next(iter(self.gathers.values())).traffic.steps if self.gathers else 0
        return total

    @property
    def param_payload_bytes(self) -> int:
        """Parameter payload bytes this rank sent over all groups and completed steps."""
        return self.param_traffic.payload_bytes

    @property
    def wire_bytes(self) -> int:
        """Bytes this rank handed to the collectives over all groups and steps."""
        return self.traffic.wire_bytes

    def state_dict(self) -> dict[str, Any]:
        """Every group's state, by module name (save it per rank, beside the model's)."""
        return {name: comm.state_dict() for name, comm in self.comms.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into the groups of the same names."""
        if not isinstance(state, dict) or set(state) != set(self.comms):
            raise ConfigError(
                f"the saved FSDP compression state has groups {sorted(state) if isinstance(state, dict) else state!r}; "
                f"this model has {sorted(self.comms)}. Shard the model as when it was saved.")
        for name, comm in self.comms.items():
            comm.load_state_dict(state[name])


def register(model: torch.nn.Module, compressor: str | Compressor, method: str = "mean", *,
             params: str | None = None, param_block_size: int = 256, **kwargs: Any) -> FSDPCompression:
    """Compress every FSDP parameter group of ``model`` (after ``fully_shard``): one
    :class:`CompressedReduceScatter` per FSDP module that holds parameters, numbered in module
    order (the same on every rank). ``kwargs``: ``seed``, ``warmup_steps``, ``alpha``.

    ``params``: ``None`` (default: FSDP's own parameter all-gather), or ``"int8"``, ``"int4"``,
    ``"bf16"``, ``"none"``: a :class:`~commpress.integrations.fsdp_params.CompressedAllGather` of
    that mode per group too (``param_block_size`` entries per scale for int8 / int4)."""
    if not isinstance(model, torch.nn.Module):
        raise InputTypeError(f"register expects the model after fully_shard (a torch.nn.Module); got {type(model).__name__}.")
    if params is not None:
        _check_mode(params, param_block_size)
    comms: dict[str, CompressedReduceScatter] = {}
    gathers: dict[str, CompressedAllGather] = {}
    for name, module in model.named_modules():
        if not hasattr(module, "set_custom_reduce_scatter"):
            continue
        if not module._get_fsdp_state()._fsdp_param_groups:  # a module without parameters of its own
            continue
        comm = CompressedReduceScatter(compressor, method, group_index=len(comms), **kwargs)
        module.set_custom_reduce_scatter(comm)
        comms[name or "<root>"] = comm
        if params is not None:
            gather = CompressedAllGather(params, block_size=param_block_size)
            module.set_custom_all_gather(gather)
            comm.param_gather = gathers[name or "<root>"] = gather
    if not comms:
        raise ConfigError("register found no FSDP module with parameters: call torch.distributed.fsdp.fully_shard "
                          "on the model (and its blocks) first.")
    return FSDPCompression(comms, gathers)
