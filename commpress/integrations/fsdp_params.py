r"""Compressed parameter all-gather for PyTorch's sharded data parallelism (FSDP2, ``fully_shard``).

Before a parameter group's forward (and again before its backward, when FSDP reshards after the
forward, its default), FSDP2 all-gathers the group's parameters: every rank contributes its flat
shard (all ranks' shards have the same length; FSDP pads them) and receives every rank's, in rank
order. On a slow link these all-gathers dominate a step: each one moves the full parameters.
PyTorch lets a user replace the collective (``FSDPModule.set_custom_all_gather``);
:class:`CompressedAllGather` sends each shard quantized instead:

1. rank :math:`r` encodes its shard :math:`x_r` into a payload of a fixed number of bytes (the
   same on every rank, since the shards have equal length: no lengths are exchanged);
2. the payloads travel with one all-gather of bytes;
3. every rank decodes the :math:`n` payloads, its own included, into the gathered parameters.

Every rank therefore computes with the same, decoded parameters :math:`\hat x = (Q(x_1), \dots,
Q(x_n))`; the sharded parameters the optimizer updates stay exact (the quantization error is not
accumulated: it is made afresh from the exact shard at every gather). The quantizer is
deterministic (round to nearest), so the forward and the backward of a step see the same
:math:`\hat x`.

Modes (``mode``):

- ``"int8"`` / ``"int4"``: blockwise absmax quantization of the weights, as ZeRO++'s quantized
  weight communication ("qwZ"; Wang et al. 2023, "ZeRO++: Extremely efficient collective
  communication for giant model training", Sec. 3.1). The shard is cut into blocks of
  ``block_size`` entries (default 256; the last one shorter), each with the float32 scale
  :math:`s = a / L`, :math:`a = \max_{i \in \text{block}} |x_i|`, :math:`L = 2^{b-1} - 1`
  (127 for :math:`b = 8`, 7 for :math:`b = 4`), and codes
  :math:`q_i = \operatorname{round}(x_i / s) \in \{-L, \dots, L\}` (0 where :math:`a = 0`):

  .. math:: Q(x)_i = s\, q_i, \qquad |Q(x)_i - x_i| \le \frac{s}{2} = \frac{a}{2\,(2^{b-1} - 1)},

  since :math:`|x_i / s - q_i| \le 1/2` (up to float32 rounding of :math:`s` and of the product,
  a few units in the last place of :math:`a`). Payload: :math:`4 \lceil m / B \rceil` bytes of
  scales and :math:`\lceil m b / 8 \rceil` bytes of codes for a shard of :math:`m` entries
  (int4: two codes a byte, :math:`q + 8` in each nibble), about 8.125 and 4.125 bits per entry
  at :math:`B = 256`. The arithmetic is float32; a group gathered in a lower precision (FSDP's
  ``MixedPrecisionPolicy(param_dtype=torch.bfloat16)``) is rounded to it after decoding. A
  shard with a NaN or Inf makes every rank raise :class:`~commpress.errors.DistributedError` (its
  payload carries NaN scales, which every rank sees), not hang.
- ``"bf16"``: a plain cast to bfloat16 (16 bits per entry, relative error :math:`\le 2^{-8}`).
- ``"none"``: the shard's own bytes through the same encode / all-gather / decode path (lossless:
  the same parameters as FSDP's own all-gather, bit for bit).

Only floating-point groups are compressed. When a group's all-gather inputs have several dtypes,
FSDP hands this collective ``uint8`` views of them; such a group (and any non-floating one) is
gathered with FSDP's plain all-gather, uncompressed (counted in ``CompressedAllGather.traffic``
all the same, and in ``CompressedAllGather.plain_calls``).

The collective runs synchronously and returns ``None`` (FSDP then treats it as a synchronous
all-gather, also when it asked for ``async_op``): on the CPU (gloo) FSDP's all-gathers are
synchronous anyway; on a GPU the encoding and decoding run on FSDP's all-gather stream.

>>> compression = commpress.integrations.fsdp.register(model, "sign:block_size=256", "ef", params="int8")
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.fsdp._fully_shard._fsdp_api import AllGather

from commpress.errors import ConfigError, DistributedError, NonFiniteError
from commpress.integrations._traffic import Traffic

__all__ = ["MODES", "CompressedAllGather", "decode", "encode", "error_bound", "payload_bytes"]

#: The parameter modes and their code bits (None: not a block quantizer).
MODES: dict[str, int | None] = {"none": None, "bf16": None, "int8": 8, "int4": 4}


def _check_mode(mode: Any, block_size: Any) -> None:
    if mode not in MODES:
        raise ConfigError(f"the parameter all-gather mode must be one of {list(MODES)}; got {mode!r}.")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ConfigError(f"block_size must be an integer >= 1; got {block_size!r}.")


def payload_bytes(numel: int, mode: str = "int8", block_size: int = 256, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of one shard's payload: ``numel`` entries of ``dtype`` in ``mode``."""
    _check_mode(mode, block_size)
    bits = MODES[mode]
    if mode == "none":
        return numel * torch.empty(0, dtype=dtype).element_size()
    if mode == "bf16":
        return 2 * numel
    return 4 * -(-numel // block_size) + -(-numel * bits // 8)


def error_bound(x: torch.Tensor, mode: str = "int8", block_size: int = 256) -> torch.Tensor:
    r"""The bound :math:`a_{\text{block}} / (2 (2^{b-1} - 1))` on :math:`|Q(x)_i - x_i|`, per entry of the
    flat ``x`` (int8 / int4 only)."""
    _check_mode(mode, block_size)
    if MODES[mode] is None:
        raise ConfigError(f"error_bound is for the block quantizers int8 and int4; got mode {mode!r}.")
    levels = 2 ** (MODES[mode] - 1) - 1
    blocks, m = _blocks(x.detach().reshape(-1).to(torch.float32), block_size)
    absmax = blocks.abs().amax(1, keepdim=True)
    return (absmax / (2 * levels)).expand_as(blocks).reshape(-1)[:m]


def _blocks(x: torch.Tensor, block_size: int) -> tuple[torch.Tensor, int]:
    m = x.numel()
    pad = -m % block_size
    if pad:
        x = torch.cat([x, x.new_zeros(pad)])
    return x.reshape(-1, block_size), m


def encode(x: torch.Tensor, mode: str = "int8", block_size: int = 256) -> torch.Tensor:
    """One shard's payload: a 1-D ``uint8`` tensor of :func:`payload_bytes` bytes.

    Raises:
        NonFiniteError: a NaN or Inf in ``x`` (int8 / int4).
    """
    _check_mode(mode, block_size)
    x = x.detach().reshape(-1)
    if mode == "none":
        return x.contiguous().view(torch.uint8).clone()
    if mode == "bf16":
        return x.to(torch.bfloat16).view(torch.uint8)
    bits = MODES[mode]
    levels = 2 ** (bits - 1) - 1
    blocks, m = _blocks(x.to(torch.float32), block_size)
    absmax = blocks.abs().amax(1)
    if not bool(torch.isfinite(absmax).all()):
        bad = int((~torch.isfinite(absmax)).nonzero()[0])
        raise NonFiniteError(
            f"the parameter shard has a NaN or Inf (first in block {bad} of {block_size} entries); "
            "the quantized all-gather needs finite parameters.")
    scales = absmax / levels
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.round(blocks / safe[:, None]).clamp_(-levels, levels).reshape(-1)[:m].to(torch.int8)
    if bits == 4:
        nib = (codes + 8).to(torch.uint8)
        if m % 2:
            nib = torch.cat([nib, nib.new_full((1,), 8)])
        packed = nib[0::2] | (nib[1::2] << 4)
    else:
        packed = codes.view(torch.uint8)
    return torch.cat([scales.view(torch.uint8), packed])


def _nan_payload(numel: int, mode: str, block_size: int) -> torch.Tensor:
    """A payload whose scales are all NaN (sent by a rank whose shard is not finite)."""
    size = payload_bytes(numel, mode, block_size)
    out = torch.zeros(size, dtype=torch.uint8)
    nblocks = -(-numel // block_size)
    out[: 4 * nblocks] = torch.full((nblocks,), float("nan")).view(torch.uint8)
    return out


def _scales(P: torch.Tensor, nblocks: int) -> torch.Tensor:
    """The float32 scales at the head of each row of ``P`` (copied: a row's offset need not be aligned)."""
    out = torch.empty((P.shape[0], 4 * nblocks), dtype=torch.uint8, device=P.device)
    return out.copy_(P[:, : 4 * nblocks]).view(torch.float32)


def decode(payloads: torch.Tensor, numel: int, mode: str = "int8", block_size: int = 256,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Decode ``(k, payload_bytes)`` uint8 payloads (or one, 1-D) into ``(k, numel)`` of ``dtype``."""
    _check_mode(mode, block_size)
    P = payloads.reshape(-1, payloads.shape[-1])
    k = P.shape[0]
    if mode == "none":
        return P.contiguous().view(dtype).reshape(k, numel)
    if mode == "bf16":
        return P.contiguous().view(torch.bfloat16).reshape(k, numel).to(dtype)
    bits = MODES[mode]
    nblocks = -(-numel // block_size)
    scales = _scales(P, nblocks)  # (k, nblocks)
    packed = P[:, 4 * nblocks :]
    if bits == 4:
        codes = torch.stack([packed & 15, packed >> 4], dim=2).reshape(k, -1)[:, :numel].to(torch.int8) - 8
    else:
        codes = packed.view(torch.int8)
    pad = nblocks * block_size - numel
    if pad:
        codes = torch.cat([codes, codes.new_zeros(k, pad)], dim=1)
    values = codes.reshape(k, nblocks, block_size).to(torch.float32) * scales[:, :, None]
    return values.reshape(k, -1)[:, :numel].to(dtype)


class CompressedAllGather(AllGather):
    """One FSDP parameter group's all-gather, quantized (see the module's documentation).

    Args:
        mode: ``"int8"`` (default), ``"int4"``, ``"bf16"`` or ``"none"`` (lossless, the same path).
        block_size: entries per scale of int8 / int4 (default 256; blocks never straddle shards).

    Attributes:
        calls: all-gathers done (FSDP's forward and backward unshards).
        shard_numel: entries of this rank's shard at the last all-gather (FSDP's padded flat shard).
        plain_calls: those gathered uncompressed (mixed-dtype ``uint8`` or non-floating groups).
        traffic: bytes this rank sent, :math:`(n - 1)` times its payload per all-gather (the share
            of a ring all-gather leaving a rank), as the reduce-scatter counts. A step (one
            training step's gathers) is closed by ``traffic.end_step()``, which
            :func:`commpress.integrations.fsdp.register` calls from the group's reduce-scatter;
            call it yourself when you set this collective alone.
    """

    def __init__(self, mode: str = "int8", *, block_size: int = 256) -> None:
        _check_mode(mode, block_size)
        self.mode = mode
        self.block_size = block_size
        self.calls = 0
        self.plain_calls = 0
        self.shard_numel = 0
        self.traffic = Traffic()

    def allocate(self, size: Any, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A fresh buffer (FSDP's default allocation)."""
        return torch.empty(*size, dtype=dtype, device=device)

    def __call__(self, output_tensor: torch.Tensor, input_tensor: torch.Tensor, group: dist.ProcessGroup,
                 async_op: bool = False) -> None:
        """``output_tensor`` (``world`` shards, in rank order) = every rank's ``input_tensor``, decoded."""
        world, rank = group.size(), group.rank()
        m = input_tensor.numel()
        if output_tensor.numel() != world * m:
            raise DistributedError(
                f"all-gather output of {output_tensor.numel()} entries is not {world} shards of {m}.")
        self.calls += 1
        self.shard_numel = m
        if not input_tensor.dtype.is_floating_point:  # FSDP's uint8 views of a mixed-dtype group
            self.plain_calls += 1
            dist.all_gather_single(output_tensor, input_tensor, group=group)
            sent = (world - 1) * m * input_tensor.element_size()
            self.traffic.add(sent, sent)
            return None
        try:
            payload = encode(input_tensor, self.mode, self.block_size)
            failed = False
        except NonFiniteError:  # take part anyway: the NaN scales tell every rank
            payload = _nan_payload(m, self.mode, self.block_size).to(input_tensor.device)
            failed = True
        size = payload.numel()
        expected = payload_bytes(m, self.mode, self.block_size, input_tensor.dtype)
        if size != expected:  # equal shards, equal payloads: nothing else is exchanged
            raise DistributedError(f"the parameter payload has {size} bytes, not the {expected} every rank expects.")
        gathered = torch.empty(world * size, dtype=torch.uint8, device=payload.device)
        dist.all_gather_single(gathered, payload, group=group)
        sent = (world - 1) * size
        self.traffic.add(sent, sent)
        gathered = gathered.reshape(world, size)
        if MODES[self.mode] is not None:
            nblocks = -(-m // self.block_size)
            scales = _scales(gathered, nblocks)
            finite = torch.isfinite(scales).all(1)
            if not bool(finite.all()):
                bad = (~finite).nonzero().flatten().tolist()
                raise DistributedError(
                    f"rank(s) {bad} have NaN or Inf parameters in their shard at all-gather {self.calls}"
                    f"{' (this rank)' if failed else ''}; every rank raises.")
        output_tensor.view(world, m).copy_(decode(gathered, m, self.mode, self.block_size, input_tensor.dtype))
        return None
