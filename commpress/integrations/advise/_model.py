r"""The performance model: a DDP step per candidate from numbers only (link, compute, payloads).

Ring collectives (Thakur, Rabenseifner, Gropp, IJHPCA 2005, Sec. 4) on a link of bandwidth
:math:`\beta` and latency :math:`\alpha`; the step adds compute, codec and communication, with the
asynchronous baselines' communication hidden behind the backward pass where it is shorter (see
:mod:`commpress.integrations.advise`). Also DDP's bucketing (:func:`ddp_buckets`) and the inverse
problem: the link that explains timed collectives (:func:`fit_link`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from commpress.errors import ConfigError
from commpress.integrations.advise._checks import _check_processes
from commpress.integrations.advise._units import _fmt_rate, _fmt_seconds

#: The names of the two reference rows.
FP32, FP16 = "fp32 all-reduce", "fp16 hook"
#: The row label of PyTorch's bf16 hook (predicted on request, ``baselines=``).
BF16 = "bf16 hook"
#: The row label of FSDP2 with its own reduce-scatter (predicted on request, ``fsdp=True``).
FSDP2 = "FSDP2"
#: PyTorch's other hooks that ``--baselines all`` predicts: bf16, PowerSGD rank 1 and rank 4.
BASELINES = ("bf16", "powersgd:1", "powersgd:4")


def is_fsdp(name: str) -> bool:
    """Whether a row is FSDP2 (its own collectives, or commpress's compressed reduce-scatter)."""
    return name == FSDP2 or name.startswith(FSDP2 + " + ")


def powersgd_name(rank: int) -> str:
    """The row label of PyTorch's PowerSGD hook at ``rank``."""
    return f"PowerSGD rank {int(rank)}"


def is_pytorch(name: str) -> bool:
    """Whether a row is one of PyTorch's own ways (fp32, fp16, bf16, PowerSGD, FSDP2's reduce-scatter),
    not a commpress hook."""
    return name in (FP32, FP16, BF16, FSDP2) or name.startswith("PowerSGD rank ")


def powersgd_payload(shapes: Sequence[Sequence[int]], rank: int, min_compression_rate: float = 2.0) -> int:
    r"""Bytes one rank all-reduces per step with PyTorch's PowerSGD hook (Vogels, Karimireddy, Jaggi,
    NeurIPS 2019, Alg. 1, as ``powerSGD_hook`` implements it): a matrix :math:`n \times m` (a tensor
    viewed as ``(shape[0], rest)``) sends :math:`P \in \mathbb R^{n\times r}` and
    :math:`Q \in \mathbb R^{m\times r}` in fp32 when :math:`nm > (n+m)r\cdot` ``min_compression_rate``,
    else itself; vectors are sent uncompressed."""
    total = 0
    for shape in shapes:
        numel = math.prod(shape)
        if len(shape) < 2:
            total += 4 * numel
            continue
        n = int(shape[0])
        m = numel // n
        r = min(int(rank), n, m)
        total += 4 * ((n + m) * r if n * m > (n + m) * r * min_compression_rate else n * m)
    return total
#: DDP's bucket sizes: the first bucket, then the cap (``bucket_cap_mb`` = 25).
FIRST_BUCKET_BYTES, BUCKET_CAP_BYTES = 1024 * 1024, 25 * 1024 * 1024


# ---------------------------------------------------------------------------- the numbers
#: The collectives a candidate's gradient reduction can use (see :class:`Candidate`).
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")


#: The per-collective factors of a :class:`Link`, each keyed by the collective :func:`fit_link` times.
FACTORS = {"all_reduce_factor": "all_reduce", "all_gather_factor": "all_gather",
           "reduce_scatter_factor": "reduce_scatter", "gather_tensor_factor": "all_gather_tensor"}


@dataclass(frozen=True)
class Link:
    """A link between ranks: ``bandwidth`` in bytes/s (one rank, one direction), ``latency`` in s.

    The factors: each collective's measured time over its ring model on this link (1 for a ring):
    ``all_reduce_factor`` and ``all_gather_factor`` (the all-gather of a list of payloads that
    commpress's DDP hooks use), ``reduce_scatter_factor`` and ``gather_tensor_factor`` (FSDP2's
    reduce-scatter and all-gather into one tensor). :func:`measure_link` times them: a backend may
    move more traffic than the ring, or move it less efficiently. gloo at 100 Mbit/s across veth,
    over tc's rate: all-reduce 1.1x, all-gather 1.6x, reduce-scatter 2.2x (an all-reduce),
    all-gather into a tensor 1.6x.
    """

    bandwidth: float
    latency: float
    source: str = "given"
    reduce_scatter_factor: float = 1.0
    gather_tensor_factor: float = 1.0
    all_reduce_factor: float = 1.0
    all_gather_factor: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.bandwidth, (int, float)) and self.bandwidth > 0 and math.isfinite(self.bandwidth)):
            raise ConfigError(f"link bandwidth must be a positive finite number of bytes/s; got {self.bandwidth!r}.")
        if not (isinstance(self.latency, (int, float)) and self.latency >= 0 and math.isfinite(self.latency)):
            raise ConfigError(f"link latency must be a finite number of seconds >= 0; got {self.latency!r}.")
        for name in FACTORS:
            factor = getattr(self, name)
            if not (isinstance(factor, (int, float)) and factor > 0 and math.isfinite(factor)):
                raise ConfigError(f"{name} must be a positive finite number; got {factor!r}.")

    def describe(self) -> str:
        text = f"{_fmt_rate(self.bandwidth)}, latency {_fmt_seconds(self.latency)} ({self.source})"
        factors = [f"{collective.replace('_', '-')} {getattr(self, name):.2f}x" for name, collective in FACTORS.items()
                   if getattr(self, name) != 1.0]
        return text + (f"; collectives over the ring model: {', '.join(factors)}" if factors else "")

    def rebased(self, bandwidth: float, latency: float, source: str) -> Link:
        r"""This link with another ``bandwidth`` and ``latency`` (e.g. the rate tc set, where this one
        was fitted by :func:`measure_link`), keeping the measured times of its collectives.

        The factors are relative to the link they were measured on: a reduce-scatter of B bytes
        took :math:`f\,\frac{k-1}{k} B/\beta` on it. On the new link the same large collective
        must take the same time, so each factor is scaled by :math:`\beta_{new}/\beta` (the factors
        come from the largest messages, where the bandwidth term dominates). Copying the factors
        unscaled onto a faster stated bandwidth under-predicts FSDP2 by :math:`\beta_{new}/\beta`
        (1.37x at tc's 100 Mbit/s against the 73 Mbit/s the probe fitted across veth).
        """
        scale = bandwidth / self.bandwidth  # a bad bandwidth is refused by Link before any factor is read
        return Link(bandwidth, latency, source=source, **{name: getattr(self, name) * scale for name in FACTORS})


@dataclass(frozen=True)
class Compute:
    """Seconds of one training step's forward pass, backward pass and optimiser step."""

    forward: float
    backward: float
    optimizer: float = 0.0

    @property
    def total(self) -> float:
        return self.forward + self.backward + self.optimizer


@dataclass(frozen=True)
class Candidate:
    """One way to average the gradient, as the predictor sees it.

    Attributes:
        name: the row's label.
        payload_bytes: bytes one rank puts into the collectives per step (all buckets); for
            ``"reduce_scatter"`` the full unsharded gradient, for ``"all_to_all"`` the bytes leaving
            the rank.
        codec_seconds: local encoding + decoding time per step (all buckets).
        collective: ``"all_reduce"``, ``"all_gather"`` (DDP), ``"reduce_scatter"`` or ``"all_to_all"``
            (FSDP2's gradient reduction: its own, or commpress's compressed one).
        messages: collectives per step (each pays the latency terms once).
        overlap: the communication runs asynchronously and can hide behind the backward pass.
        param_bytes: FSDP2 only: the bytes of the full parameters, all-gathered twice per step
            (before the forward and again before the backward, FSDP2's default resharding).
    """

    name: str
    payload_bytes: float
    codec_seconds: float
    collective: str
    messages: int = 1
    overlap: bool = False
    param_bytes: float = 0.0

    def __post_init__(self) -> None:
        if self.collective not in COLLECTIVES:
            raise ConfigError(f"collective must be one of {', '.join(COLLECTIVES)}; got {self.collective!r}.")
        if self.payload_bytes < 0 or self.codec_seconds < 0 or self.messages < 0:
            raise ConfigError(
                f"candidate {self.name!r}: payload_bytes, codec_seconds and messages must be >= 0; got "
                f"{self.payload_bytes}, {self.codec_seconds}, {self.messages}."
            )


@dataclass(frozen=True)
class Prediction:
    """The predicted step of one candidate (seconds), with its speed-ups over the references."""

    name: str
    payload_bytes: float
    bits_per_coordinate: float
    compute: float
    codec: float
    comm: float
    step: float
    vs_fp32: float
    vs_fp16: float | None
    #: FSDP2 rows: the two parameter all-gathers' bits leaving a rank per step and coordinate
    #: (:math:`2 \cdot 8 \cdot` ``param_bytes`` :math:`(k-1)/(k d)`, 64 (k-1)/k uncompressed); None for DDP rows.
    param_bits_per_coordinate: float | None = None


# ---------------------------------------------------------------------------- the link model
def allreduce_seconds(nbytes: float, processes: int, link: Link, messages: int = 1) -> float:
    r"""Ring all-reduce of ``nbytes`` per rank: :math:`2(k-1)\alpha m + \frac{2(k-1)}{k} B/\beta`."""
    k = _check_processes(processes)
    return 2 * (k - 1) * link.latency * messages + 2 * (k - 1) / k * nbytes / link.bandwidth


def allgather_seconds(nbytes: float, processes: int, link: Link, messages: int = 1) -> float:
    r"""Ring all-gather of ``nbytes`` from each rank: :math:`(k-1)\alpha m + (k-1) B/\beta`."""
    k = _check_processes(processes)
    return (k - 1) * link.latency * messages + (k - 1) * nbytes / link.bandwidth


def reduce_scatter_seconds(nbytes: float, processes: int, link: Link, messages: int = 1) -> float:
    r"""Reduce-scatter of an ``nbytes`` input per rank (each rank keeps :math:`1/k` of the sum), times
    the link's measured ``reduce_scatter_factor``: :math:`f\,[(k-1)\alpha m + \frac{k-1}{k} B/\beta]`
    (the ring's cost when f = 1; gloo's reduce-scatter measures about twice that, an all-reduce's)."""
    k = _check_processes(processes)
    return link.reduce_scatter_factor * ((k - 1) * link.latency * messages + (k - 1) / k * nbytes / link.bandwidth)


def all_to_all_seconds(nbytes_out: float, processes: int, link: Link, messages: int = 1) -> float:
    r"""All-to-all in which one rank sends ``nbytes_out`` in all to its peers: :math:`(k-1)\alpha m + B_{out}/\beta`."""
    k = _check_processes(processes)
    return (k - 1) * link.latency * messages + nbytes_out / link.bandwidth


def _comm_seconds(c: Candidate, processes: int, link: Link) -> float:
    if c.collective == "all_reduce":
        return link.all_reduce_factor * allreduce_seconds(c.payload_bytes, processes, link, c.messages)
    if c.collective == "all_gather":
        return link.all_gather_factor * allgather_seconds(c.payload_bytes, processes, link, c.messages)
    k = _check_processes(processes)
    # forward and backward all-gathers of the parameters, into one tensor
    params = 2 * link.gather_tensor_factor * allgather_seconds(c.param_bytes / k, k, link, c.messages)
    if c.collective == "reduce_scatter":
        return params + reduce_scatter_seconds(c.payload_bytes, k, link, c.messages)
    return params + all_to_all_seconds(c.payload_bytes, k, link, 2 * c.messages)  # lengths, then payloads


def _step_seconds(c: Candidate, comm: float, compute: Compute) -> float:
    if c.overlap:
        return compute.forward + max(compute.backward, comm) + compute.optimizer + c.codec_seconds
    return compute.total + c.codec_seconds + comm


def _leaving(c: Candidate, processes: int) -> float:
    """The payload a row reports: the message a rank contributes (DDP), or for FSDP2 the bytes leaving a
    rank (a reduce-scatter keeps 1/k of its input; the compressed rows' payloads already exclude it)."""
    return c.payload_bytes * (processes - 1) / processes if c.collective == "reduce_scatter" else c.payload_bytes


def predict(candidates: Sequence[Candidate], *, link: Link, processes: int, compute: Compute, d: int) -> list[Prediction]:
    """The predicted step time of every candidate, in the given order.

    ``candidates`` must contain the fp32 reference (named ``"fp32 all-reduce"``); the fp16 reference
    (``"fp16 hook"``) is optional. ``d`` is the number of gradient coordinates (for bits/coordinate).
    """
    names = [c.name for c in candidates]
    if FP32 not in names:
        raise ConfigError(f"predict needs the {FP32!r} reference among the candidates; got {names}.")
    if d < 1:
        raise ConfigError(f"d (gradient coordinates) must be >= 1; got {d}.")
    steps, comms = {}, {}
    for c in candidates:
        comms[c.name] = _comm_seconds(c, processes, link)
        steps[c.name] = _step_seconds(c, comms[c.name], compute)
    fp16 = steps.get(FP16)
    return [
        Prediction(
            name=c.name, payload_bytes=_leaving(c, processes), bits_per_coordinate=8 * _leaving(c, processes) / d,
            compute=compute.total, codec=c.codec_seconds, comm=comms[c.name], step=steps[c.name],
            vs_fp32=steps[FP32] / steps[c.name], vs_fp16=None if fp16 is None else fp16 / steps[c.name],
            param_bits_per_coordinate=16 * c.param_bytes * (processes - 1) / (processes * d)
            if c.collective in ("reduce_scatter", "all_to_all") else None,
        )
        for c in candidates
    ]


def break_even_bandwidth(a: Candidate, b: Candidate, *, latency: float, processes: int, compute: Compute,
                         factors: Link | None = None) -> float | None:
    """The bandwidth (bytes/s) at which candidates ``a`` and ``b`` take equal steps, or ``None``.

    Below it the one with the smaller payload is faster. Found by bisection on the predicted
    step difference (piecewise linear in 1/bandwidth); ``None`` when the sign never changes
    between 1 kB/s and 1 PB/s. ``factors``: a link whose collectives' factors (:data:`FACTORS`)
    hold at every bandwidth tried (:func:`advise` passes its link); without it, rings (1).
    """
    kept = {} if factors is None else {name: getattr(factors, name) for name in FACTORS}

    def gap(bandwidth: float) -> float:
        link = Link(bandwidth, latency, **kept)
        return (_step_seconds(a, _comm_seconds(a, processes, link), compute)
                - _step_seconds(b, _comm_seconds(b, processes, link), compute))

    lo, hi = 1e3, 1e15
    g_lo, g_hi = gap(lo), gap(hi)
    if g_lo == 0:
        return lo
    if g_lo * g_hi > 0:
        return None
    for _ in range(200):  # bisection in log space
        mid = math.sqrt(lo * hi)
        g_mid = gap(mid)
        if g_mid * g_lo > 0:
            lo, g_lo = mid, g_mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-9:
            break
    return math.sqrt(lo * hi)


def fit_link(samples: Sequence[tuple[str, float, float]], processes: int, source: str = "fitted") -> Link:
    r"""Latency and bandwidth that best explain timed collectives.

    ``samples``: ``(collective, bytes per rank, seconds)`` with collective ``"all_reduce"`` or
    ``"all_gather"``. Each is one equation :math:`t = a\,\alpha + v / \beta` of the model above
    (:math:`a, v` the latency count and volume of the collective); solved for
    :math:`(\alpha, 1/\beta)` by least squares with :math:`\alpha \ge 0`. The errors are absolute,
    so the largest messages set the bandwidth (small ones may ride a shaper's burst allowance or
    a socket buffer and look faster than the link); time sizes a few decades apart.

    ``"reduce_scatter"`` samples (bytes = the input per rank) and ``"all_gather_tensor"`` samples
    (bytes = the shard per rank) do not enter the fit. Every collective's factor (:data:`FACTORS`)
    is the median, over its largest messages (within 8x of the largest), of the measured time over
    its ring model on the fitted link (1 without such samples): one line fits all collectives only
    where the backend runs them all as rings (gloo's all-gather moved bytes 1.5x slower than its
    all-reduce across veth at 100 Mbit/s).
    """
    k = _check_processes(processes)
    if k < 2:
        raise ConfigError("fitting a link needs timings between at least 2 processes.")
    rows, timed = [], {collective: [] for collective in FACTORS.values()}
    for collective, nbytes, seconds in samples:
        if collective in ("reduce_scatter", "all_gather_tensor"):
            if not seconds > 0:
                raise ConfigError(f"a timed collective must take > 0 s; got {seconds!r} for {collective}.")
            timed[collective].append((nbytes, seconds))
            continue
        if collective == "all_reduce":
            a, v = 2 * (k - 1), 2 * (k - 1) / k * nbytes
        elif collective == "all_gather":
            a, v = k - 1, (k - 1) * nbytes
        else:
            raise ConfigError(f"unknown collective {collective!r} in the link samples; use 'all_reduce' or 'all_gather'.")
        if not seconds > 0:
            raise ConfigError(f"a timed collective must take > 0 s; got {seconds!r} for {collective} of {nbytes} bytes.")
        rows.append((a, v, seconds))
        timed[collective].append((nbytes, seconds))
    if len(rows) < 2:
        raise ConfigError(f"fitting a link needs at least two timings of different sizes; got {len(rows)}.")
    M = torch.tensor(rows, dtype=torch.float64)
    A, t = M[:, :2] * torch.tensor([1.0, 1e-9], dtype=torch.float64), M[:, 2:]  # volumes in GB: conditioning
    solution = torch.linalg.lstsq(A, t).solution.reshape(-1)
    latency, inv_bw = float(solution[0]), float(solution[1]) * 1e-9
    if latency < 0 or inv_bw <= 0:  # refit on the boundary alpha = 0
        latency = 0.0
        inv_bw = float(torch.linalg.lstsq(A[:, 1:2], t).solution.reshape(-1)[0]) * 1e-9
    if inv_bw <= 0:
        raise ConfigError("the timings do not grow with the message size; time larger messages to fit a bandwidth.")
    link = Link(bandwidth=1.0 / inv_bw, latency=latency, source=source)
    models = {"all_reduce": allreduce_seconds, "all_gather": allgather_seconds,
              "reduce_scatter": reduce_scatter_seconds, "all_gather_tensor": allgather_seconds}
    factors = {}
    for name, collective in FACTORS.items():
        if timed[collective]:  # the largest messages only, as for the bandwidth: small ones ride buffers
            top = max(nbytes for nbytes, _ in timed[collective])
            factors[name] = float(statistics.median(seconds / models[collective](nbytes, k, link)
                                                    for nbytes, seconds in timed[collective] if nbytes * 8 >= top))
    return dataclasses.replace(link, **factors) if factors else link


def ddp_buckets(numels: Sequence[int], *, element_size: int = 4, first_bucket_bytes: int = FIRST_BUCKET_BYTES,
                bucket_cap_bytes: int = BUCKET_CAP_BYTES) -> list[int]:
    """Entries per gradient bucket as DDP forms them: parameters in reverse order, a bucket closes
    once it holds at least its limit (the first bucket's limit is ``first_bucket_bytes``)."""
    buckets, current, limit = [], 0, first_bucket_bytes
    for numel in reversed(list(numels)):
        current += int(numel)
        if current * element_size >= limit:
            buckets.append(current)
            current, limit = 0, bucket_cap_bytes
    if current:
        buckets.append(current)
    return buckets
