r"""Will gradient compression pay on this link? Predict a DDP step per compressor.

A DDP step on :math:`k` ranks costs its compute, the compressor's encoding and decoding, and the
time the collectives need on the link. The link is modelled by a bandwidth :math:`\beta`
(bytes/s one rank sends, per direction) and a latency :math:`\alpha` (seconds per message hop),
as in the ring collectives gloo and NCCL use (Thakur, Rabenseifner, Gropp, Optimization of
collective communication operations in MPICH, IJHPCA 2005, Sec. 4):

.. math::
    T_{\text{all-reduce}}(B) = 2(k-1)\,\alpha + \frac{2(k-1)}{k}\,\frac{B}{\beta}, \qquad
    T_{\text{all-gather}}(B) = (k-1)\,\alpha + (k-1)\,\frac{B}{\beta},

with :math:`B` the bytes of one rank's input (its bucket, or its payload), once per collective
(the latency terms count one message per collective per bucket). Summable messages (the plain
mean; ``compressor.summable``) ride an all-reduce; all other compressors' payloads are
all-gathered as the commpress DDP hooks do (a length word, then the payloads), and every rank
decodes all :math:`k` of them.

DDP's own fp32 all-reduce and PyTorch's fp16 hook run asynchronously, so their communication can
hide behind the backward pass: their step is predicted as
:math:`t_{\text{fwd}} + \max(t_{\text{bwd}}, T_{\text{comm}}) + t_{\text{opt}} + t_{\text{codec}}`,
the baselines' best case. The commpress hooks run their collectives synchronously:
:math:`t_{\text{compute}} + t_{\text{codec}} + T_{\text{comm}}`. Encoding and decoding are
measured on this machine on vectors of the model's bucket sizes.

The pure part (:func:`predict`, :func:`verdict`, :func:`fit_link`, :func:`break_even_bandwidth`)
takes numbers only; :func:`measure_link`, :func:`measure_compute` and :func:`measure_candidates`
measure them; :func:`advise` does both and :func:`format_advice` prints the table and the verdict.
"""

from __future__ import annotations

import ast
import datetime
import math
import os
import re
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from commpress.compressors import Compressor, make
from commpress.errors import ConfigError, DistributedError, InputTypeError

__all__ = [
    "Advice",
    "Candidate",
    "Compute",
    "DEFAULT_COMPRESSORS",
    "Link",
    "Prediction",
    "advise",
    "allgather_seconds",
    "allreduce_seconds",
    "break_even_bandwidth",
    "compressor_from_spec",
    "ddp_buckets",
    "fit_link",
    "format_advice",
    "make_model",
    "measure_candidates",
    "measure_compute",
    "measure_link",
    "parse_bandwidth",
    "parse_latency",
    "predict",
    "verdict",
]

#: Compressors advised on by default (those registered are used), as ``name[:key=value,...]``.
DEFAULT_COMPRESSORS = ("sign", "cq", "permk+cq", "drive", "qsgd:s=7", "natural")
#: The names of the two reference rows.
FP32, FP16 = "fp32 all-reduce", "fp16 hook"
#: DDP's bucket sizes: the first bucket, then the cap (``bucket_cap_mb`` = 25).
FIRST_BUCKET_BYTES, BUCKET_CAP_BYTES = 1024 * 1024, 25 * 1024 * 1024
#: Bytes of the length word the commpress hooks all-gather before each payload.
_LENGTH_BYTES = 8


# ---------------------------------------------------------------------------- the numbers
@dataclass(frozen=True)
class Link:
    """A link between ranks: ``bandwidth`` in bytes/s (one rank, one direction), ``latency`` in s."""

    bandwidth: float
    latency: float
    source: str = "given"

    def __post_init__(self) -> None:
        if not (isinstance(self.bandwidth, (int, float)) and self.bandwidth > 0 and math.isfinite(self.bandwidth)):
            raise ConfigError(f"link bandwidth must be a positive finite number of bytes/s; got {self.bandwidth!r}.")
        if not (isinstance(self.latency, (int, float)) and self.latency >= 0 and math.isfinite(self.latency)):
            raise ConfigError(f"link latency must be a finite number of seconds >= 0; got {self.latency!r}.")

    def describe(self) -> str:
        return f"{_fmt_rate(self.bandwidth)}, latency {_fmt_seconds(self.latency)} ({self.source})"


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
        payload_bytes: bytes one rank puts into the collectives per step (all buckets).
        codec_seconds: local encoding + decoding time per step (all buckets).
        collective: ``"all_reduce"`` or ``"all_gather"``.
        messages: collectives per step (each pays the latency terms once).
        overlap: the communication runs asynchronously and can hide behind the backward pass.
    """

    name: str
    payload_bytes: float
    codec_seconds: float
    collective: str
    messages: int = 1
    overlap: bool = False

    def __post_init__(self) -> None:
        if self.collective not in ("all_reduce", "all_gather"):
            raise ConfigError(f"collective must be 'all_reduce' or 'all_gather'; got {self.collective!r}.")
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


# ---------------------------------------------------------------------------- the link model
def allreduce_seconds(nbytes: float, processes: int, link: Link, messages: int = 1) -> float:
    r"""Ring all-reduce of ``nbytes`` per rank: :math:`2(k-1)\alpha m + \frac{2(k-1)}{k} B/\beta`."""
    k = _check_processes(processes)
    return 2 * (k - 1) * link.latency * messages + 2 * (k - 1) / k * nbytes / link.bandwidth


def allgather_seconds(nbytes: float, processes: int, link: Link, messages: int = 1) -> float:
    r"""Ring all-gather of ``nbytes`` from each rank: :math:`(k-1)\alpha m + (k-1) B/\beta`."""
    k = _check_processes(processes)
    return (k - 1) * link.latency * messages + (k - 1) * nbytes / link.bandwidth


def _comm_seconds(c: Candidate, processes: int, link: Link) -> float:
    fn = allreduce_seconds if c.collective == "all_reduce" else allgather_seconds
    return fn(c.payload_bytes, processes, link, c.messages)


def _step_seconds(c: Candidate, comm: float, compute: Compute) -> float:
    if c.overlap:
        return compute.forward + max(compute.backward, comm) + compute.optimizer + c.codec_seconds
    return compute.total + c.codec_seconds + comm


def predict(candidates: Sequence[Candidate], *, link: Link, processes: int, compute: Compute, d: int) -> list[Prediction]:
    """The predicted step time of every candidate, in the given order.

    ``candidates`` must contain the fp32 reference (named :data:`FP32`); the fp16 reference
    (:data:`FP16`) is optional. ``d`` is the number of gradient coordinates (for bits/coordinate).
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
            name=c.name, payload_bytes=c.payload_bytes, bits_per_coordinate=8 * c.payload_bytes / d,
            compute=compute.total, codec=c.codec_seconds, comm=comms[c.name], step=steps[c.name],
            vs_fp32=steps[FP32] / steps[c.name], vs_fp16=None if fp16 is None else fp16 / steps[c.name],
        )
        for c in candidates
    ]


def break_even_bandwidth(a: Candidate, b: Candidate, *, latency: float, processes: int, compute: Compute) -> float | None:
    """The bandwidth (bytes/s) at which candidates ``a`` and ``b`` take equal steps, or ``None``.

    Below it the one with the smaller payload is faster. Found by bisection on the predicted
    step difference (piecewise linear in 1/bandwidth); ``None`` when the sign never changes
    between 1 kB/s and 1 PB/s.
    """
    def gap(bandwidth: float) -> float:
        link = Link(bandwidth, latency)
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


def verdict(predictions: Sequence[Prediction], *, break_even: float | None = None) -> str:
    """One plain sentence: which is fastest, and whether compression pays on this link.

    ``break_even``: the bandwidth (bytes/s) below which the best compressor would beat fp32
    all-reduce (see :func:`break_even_bandwidth`), quoted when compression does not pay.
    """
    by_name = {p.name: p for p in predictions}
    others = [p for p in predictions if p.name not in (FP32, FP16)]
    fastest = min(predictions, key=lambda p: p.step)
    best = min(others, key=lambda p: p.step) if others else None
    fp32 = by_name[FP32]
    if fastest.name == FP32:
        text = f"on this link compression does not pay: fp32 all-reduce is fastest ({_ms(fp32.step)} per step)"
        if FP16 in by_name:
            text += f"; the fp16 hook would take {_ms(by_name[FP16].step)}"
        if best is not None:
            text += (f", the best compressor ({best.name}) {_ms(best.step)}: its encoding and decoding "
                     f"({_ms(best.codec)}) cost more than the {_ms(fp32.comm - best.comm)} it saves on the wire")
        if break_even is not None:
            text += f". Compression would pay below about {_fmt_rate(break_even)}"
        return text + "."
    if fastest.name == FP16:
        text = (f"on this link compression beyond fp16 does not pay: the fp16 hook is fastest ({_ms(fastest.step)} "
                f"per step, {fastest.vs_fp32:.1f}x faster than fp32 all-reduce)")
        if best is not None:
            text += f"; the best compressor ({best.name}) would take {_ms(best.step)}"
        return text + "."
    text = (f"compression pays: {fastest.name} is fastest ({_ms(fastest.step)} per step), "
            f"{fastest.vs_fp32:.1f}x faster than fp32 all-reduce")
    if fastest.vs_fp16 is not None:
        text += f" and {fastest.vs_fp16:.1f}x faster than the fp16 hook"
    return text + "."


def fit_link(samples: Sequence[tuple[str, float, float]], processes: int, source: str = "fitted") -> Link:
    r"""Latency and bandwidth that best explain timed collectives.

    ``samples``: ``(collective, bytes per rank, seconds)`` with collective ``"all_reduce"`` or
    ``"all_gather"``. Each is one equation :math:`t = a\,\alpha + v / \beta` of the model above
    (:math:`a, v` the latency count and volume of the collective); solved for
    :math:`(\alpha, 1/\beta)` by least squares with :math:`\alpha \ge 0`. The errors are absolute,
    so the largest messages set the bandwidth (small ones may ride a shaper's burst allowance or
    a socket buffer and look faster than the link); time sizes a few decades apart.
    """
    k = _check_processes(processes)
    if k < 2:
        raise ConfigError("fitting a link needs timings between at least 2 processes.")
    rows = []
    for collective, nbytes, seconds in samples:
        if collective == "all_reduce":
            a, v = 2 * (k - 1), 2 * (k - 1) / k * nbytes
        elif collective == "all_gather":
            a, v = k - 1, (k - 1) * nbytes
        else:
            raise ConfigError(f"unknown collective {collective!r} in the link samples; use 'all_reduce' or 'all_gather'.")
        if not seconds > 0:
            raise ConfigError(f"a timed collective must take > 0 s; got {seconds!r} for {collective} of {nbytes} bytes.")
        rows.append((a, v, seconds))
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
    return Link(bandwidth=1.0 / inv_bw, latency=latency, source=source)


# ---------------------------------------------------------------------------- units
#: Decimal and binary prefixes of a rate (any case: ``mbit`` is megabits, as in tc).
_RATE_PREFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
                  "ki": 2.0**10, "mi": 2.0**20, "gi": 2.0**30, "ti": 2.0**40}
_BIT_WORDS = ("bit", "bits", "bit/s", "bits/s")
_BYTE_WORDS = ("byte/s", "bytes/s")
#: The accepted spellings, for the messages (the M prefix stands for every prefix).
BANDWIDTH_UNITS = ("bits/s: bit, Mbit, Mbit/s, Mb/s, Mbps; bytes/s: B/s, MB/s, MBps, MiB/s, MByte/s "
                   "(prefixes k, M, G, T and Ki, Mi, Gi, Ti)")
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_bandwidth(text: str) -> float:
    """``"100Mbit"`` -> 12.5e6 bytes/s.

    ============================================  =========  ==================================
    spelling (M stands for k, M, G, T, Ki, ...)   unit       note
    ============================================  =========  ==================================
    ``Mbit``, ``mbit``, ``Mbit/s``, ``Mbits/s``   bits/s     tc's ``mbit``; ``bit`` in any case
    ``Mb/s``, ``Mbps``, ``Gbps``, ``Kbps``        bits/s     lowercase ``b``: bits
    ``MB/s``, ``MBps``, ``MiB/s``, ``MByte/s``    bytes/s    uppercase ``B``: bytes
    ``mbps``, ``kbps``, ``gbps``, ``bps``         refused    tc reads them as bytes/s, most
                                                             people as bits/s: say which
    ``MB``, ``Mb``, ``M``, ``MBPS``               refused    a size, or no bit/byte case
    ============================================  =========  ==================================

    Prefixes are decimal (k = 10^3, M = 10^6, G = 10^9, T = 10^12) or binary (Ki = 2^10, ...),
    in any case. Anything else is a :class:`ConfigError` listing the accepted spellings.
    """
    value, unit = _split_unit(text, "bandwidth", "100Mbit")
    match = re.fullmatch(r"([kmgt]i?)?(.+)", unit, flags=re.IGNORECASE)
    prefix, base = match.group(1) or "", match.group(2)
    if base.lower() == "i":  # "Mi" alone: no base
        prefix, base = "", unit
    if base.lower() in _BIT_WORDS or base == "b/s" or (base == "bps" and prefix != prefix.lower()):
        per_byte = 1 / 8
    elif base.lower() in _BYTE_WORDS or base in ("B/s", "Bps"):
        per_byte = 1.0
    elif base == "bps":  # all lowercase: tc's spelling of bytes/s, everyone else's of bits/s
        p = {"k": "k", "ki": "Ki"}.get(prefix.lower(), prefix.capitalize())  # the usual spelling
        raise ConfigError(
            f"ambiguous bandwidth unit {unit!r} in {text!r}: tc reads it as bytes/s, most people as bits/s. "
            f"Write {value:g}{p}bit/s{f' (or {value:g}{p.capitalize()}bps)' if p else ''} for bits/s, "
            f"{value:g}{p}B/s for bytes/s."
        )
    else:
        raise ConfigError(f"unknown bandwidth unit {unit!r} in {text!r}; write {BANDWIDTH_UNITS}, "
                          "e.g. 100Mbit, 1Gbit/s, 50MB/s.")
    rate = value * _RATE_PREFIXES[prefix.lower()] * per_byte
    if not rate > 0:
        raise ConfigError(f"bandwidth must be positive; got {text!r}.")
    return rate


def parse_latency(text: str) -> float:
    """``"1ms"`` -> 0.001 s. Units: s, ms, us, ns."""
    value, unit = _split_unit(text, "latency", "1ms")
    unit = unit.lower()
    if unit not in _TIME_UNITS:
        raise ConfigError(f"unknown latency unit {unit!r} in {text!r}; use s, ms, us or ns (e.g. 1ms, 50us).")
    if value < 0:
        raise ConfigError(f"latency must be >= 0; got {text!r}.")
    return value * _TIME_UNITS[unit]


def _split_unit(text: str, what: str, example: str) -> tuple[float, str]:
    """The number and the unit of ``text``, the unit's case kept (``Mb/s`` is not ``MB/s``)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9].*?)?\s*", str(text))
    if not match:
        raise ConfigError(f"cannot read the {what} {text!r}; write a number and a unit, e.g. {example}.")
    if not match.group(2):
        raise ConfigError(f"the {what} {text!r} has no unit; write e.g. {example}.")
    return float(match.group(1)), match.group(2)


# ---------------------------------------------------------------------------- models
class _SmallCNN(nn.Module):
    """The small CNN of ``examples/ddp_mnist.py`` on 28x28 images (about 9k parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp(sizes: Sequence[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_model(kind: str = "cnn", *, hidden: int = 1024, params: int | None = None,
               batch_size: int = 32, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """A model and one batch ``(x, y)`` (10 classes) to time a training step on.

    ``kind="cnn"``: the small CNN on 28x28 images; ``kind="mlp"``: 784 -> hidden -> hidden -> 10;
    ``params=N``: an MLP 784 -> h -> h -> 10 with h chosen so that it has about N parameters
    (a stand-in for a user's model of N parameters). Weights and data come from a generator
    seeded with ``seed``; the global RNG is not touched.
    """
    if params is not None:
        params = _check_int("model params", params, 1000)
        # 784 h + h^2 + 10 h weights, 2 h + 10 biases
        h = max(1, round((-796 + math.sqrt(796**2 + 4 * max(params - 10, 1))) / 2))
        sizes = [784, h, h, 10]
        kind = "mlp"
    elif kind == "mlp":
        sizes = [784, _check_int("hidden", hidden, 1), hidden, 10]
    elif kind != "cnn":
        raise ConfigError(f"unknown model {kind!r}; use 'cnn', 'mlp' (with hidden=) or params=N.")
    batch_size = _check_int("batch size", batch_size, 1)
    with torch.device("meta"):
        model = _SmallCNN() if kind == "cnn" else _mlp(sizes)
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.normal_(0.0, 1.0 / math.sqrt(max(fan_in, 1)), generator=g)
    shape = (batch_size, 1, 28, 28) if kind == "cnn" else (batch_size, 784)
    x = torch.randn(shape, generator=g)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    return model, (x, y)


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


# ---------------------------------------------------------------------------- measurements
def measure_compute(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                    repeat: int = 5, threads: int | None = None) -> Compute:
    """Median forward, backward and SGD-step times of ``model`` on ``batch`` with ``threads`` threads."""
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"measure_compute expects a torch.nn.Module; got {type(model).__name__}.")
    repeat = _check_int("repeat", repeat, 1)
    loss_fn = loss_fn or nn.functional.cross_entropy
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    x, y = batch
    fwd, bwd, step = [], [], []
    with _threads(threads):
        for i in range(repeat + 1):  # the first run warms up
            opt.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            loss = loss_fn(model(x), y)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            if i:
                fwd.append(t1 - t0)
                bwd.append(t2 - t1)
                step.append(t3 - t2)
    return Compute(statistics.median(fwd), statistics.median(bwd), statistics.median(step))


def compressor_from_spec(spec: str | Compressor) -> Compressor:
    """``"qsgd:s=7"`` -> ``make("qsgd", s=7)``; a Compressor passes through."""
    if isinstance(spec, Compressor):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputTypeError(f"a compressor spec is a string like 'qsgd:s=7'; got {spec!r}.")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"bad compressor parameter {item!r} in {spec!r}; write key=value, e.g. qsgd:s=7.")
        try:
            params[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            params[key.strip()] = value.strip()
    return make(name.strip(), **params)


def measure_candidates(compressors: Sequence[str | Compressor], buckets: Sequence[int], processes: int, *,
                       repeat: int = 3, threads: int | None = None, seed: int = 0) -> list[Candidate]:
    """The fp32 and fp16 references and one candidate per compressor, with codec times measured here.

    Codec time per step = the sum over ``buckets`` (entries per bucket) of this rank's encoding
    and the decoding of all ``processes`` payloads (for summable compressors: the fast path of
    this rank's row), with the hook's passes over the bucket (a working copy, the mean of the
    decoded rows, the copy back), median of ``repeat`` runs; payload bytes are the real packed
    lengths. Stateful hooks (EF, EF21, DIANA) add a few vector additions per bucket, not counted.
    """
    k = _check_processes(processes)
    repeat = _check_int("repeat", repeat, 1)
    buckets = [int(b) for b in buckets]
    if not buckets or min(buckets) < 1:
        raise ConfigError(f"buckets must be a non-empty list of positive sizes; got {buckets}.")
    d = sum(buckets)
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(b, generator=g) for b in buckets]
    with _threads(threads):
        fp16 = _median_time(lambda: [x.div(k).half().float() for x in grads], repeat)
        out = [
            Candidate(FP32, 4 * d, 0.0, "all_reduce", len(buckets), overlap=True),
            Candidate(FP16, 2 * d, fp16, "all_reduce", len(buckets), overlap=True),
        ]
        for spec in compressors:
            C = compressor_from_spec(spec)
            label = spec if isinstance(spec, str) else repr(C)
            if C.summable:
                def summed_once() -> None:
                    for x in grads:
                        C.apply(x.clone()[None], seed, clients=[0], n=k)[0].clone()

                codec = _median_time(summed_once, repeat)
                out.append(Candidate(label, 4 * (d + len(buckets)), codec, "all_reduce", len(buckets)))
                continue
            payloads = [C.encode(x[None], seed, clients=[0], n=k)[0] for x in grads]
            clients = torch.arange(k)

            def codec_once() -> None:  # as the hook does: working copy, encode, decode all, mean, copy back
                for x, p in zip(grads, payloads):
                    C.encode(x.clone()[None], seed, clients=[0], n=k)
                    C.decode([p] * k, seed, x.numel(), clients=clients, n=k).mean(dim=0).clone()

            nbytes = sum(len(p) + _LENGTH_BYTES for p in payloads)
            out.append(Candidate(label, nbytes, _median_time(codec_once, repeat), "all_gather", 2 * len(buckets)))
    return out


def measure_link(processes: int = 2, *, sizes: Sequence[int] = (4096, 262144, 4 * 1024 * 1024), repeat: int = 5,
                 master_addr: str | None = None, master_port: int | None = None, rank: int | None = None,
                 timeout: float = 120.0) -> Link:
    """Time gloo all-reduce and all-gather of ``sizes`` bytes per rank and fit :func:`fit_link`.

    Without ``master_addr``: spawns ``processes`` local processes on 127.0.0.1 (the link between
    ranks on this machine). With ``master_addr``, ``master_port`` and ``rank``: this process is
    rank ``rank`` of ``processes`` ranks started the same way on the given hosts.
    """
    k = _check_processes(processes)
    if k < 2:
        raise ConfigError("measuring a link needs --processes >= 2.")
    sizes = [_check_int("message size", s, 4) for s in sizes]
    if len(set(sizes)) < 2:
        raise ConfigError(f"measuring a link needs at least two different message sizes; got {sizes}.")
    if master_addr is not None:
        if rank is None or master_port is None:
            raise ConfigError("joining ranks on other hosts needs master_addr, master_port and rank together.")
        samples = _link_samples(int(rank), k, master_addr, int(master_port), sizes, repeat, timeout)
        return fit_link(samples, k, source=f"measured: gloo between {k} ranks via {master_addr}")
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_link_worker, args=(r, k, "127.0.0.1", port, sizes, repeat, timeout, queue), daemon=True)
             for r in range(k)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout + 60
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.terminate()
        p.join(5)
    result = queue.get() if not queue.empty() else None
    if alive or result is None or isinstance(result, str):
        detail = result if isinstance(result, str) else "a rank did not finish"
        raise DistributedError(f"measuring the link between {k} local processes failed ({detail}); "
                               "pass --bandwidth and --latency to give the link instead.")
    return fit_link(result, k, source=f"measured: gloo between {k} local processes")


def _link_worker(rank: int, k: int, addr: str, port: int, sizes: list[int], repeat: int, timeout: float, queue) -> None:
    torch.set_num_threads(1)
    try:
        samples = _link_samples(rank, k, addr, port, sizes, repeat, timeout)
        if rank == 0:
            queue.put(samples)
    except Exception as err:  # reported by the parent
        if rank == 0:
            queue.put(f"{type(err).__name__}: {err}")


def _link_samples(rank: int, k: int, addr: str, port: int, sizes: list[int], repeat: int,
                  timeout: float) -> list[tuple[str, float, float]]:
    dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=rank, world_size=k,
                            timeout=datetime.timedelta(seconds=timeout))
    try:
        samples = []
        for nbytes in sizes:
            x = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
            b = torch.ones(nbytes, dtype=torch.uint8)
            outs = [torch.empty_like(b) for _ in range(k)]
            for name, fn in (("all_reduce", lambda: dist.all_reduce(x)),
                             ("all_gather", lambda: dist.all_gather(outs, b))):
                fn()  # warm-up: connections, buffers
                times = []
                for _ in range(repeat):
                    dist.barrier()
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                t = torch.tensor([statistics.median(times)], dtype=torch.float64)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
                samples.append((name, float(4 * x.numel() if name == "all_reduce" else nbytes), float(t)))
        return samples
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- the whole advice
@dataclass
class Advice:
    """What :func:`advise` found: the link, the compute, the predictions and the verdict."""

    link: Link
    processes: int
    d: int
    buckets: list[int]
    compute: Compute
    predictions: list[Prediction]
    verdict: str
    break_even: float | None = None
    notes: list[str] = field(default_factory=list)


def advise(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *, processes: int = 2,
           link: Link | None = None, compressors: Sequence[str | Compressor] | None = None,
           repeat: int = 3, threads: int | None = None, loss_fn=None,
           link_options: dict[str, Any] | None = None) -> Advice:
    """Measure what is not given and predict a DDP step of ``model`` per compressor.

    ``link=None`` measures the link with :func:`measure_link` (``link_options`` go there).
    ``threads``: threads per rank for the local timings (default: this machine's cores shared
    by ``processes`` local ranks, or all of them when ranks run on other hosts).
    """
    k = _check_processes(processes)
    if k < 2:
        raise ConfigError(f"advice compares ways to average across ranks; --processes must be >= 2, got {k}.")
    link_options = dict(link_options or {})
    if threads is None:
        local = 1 if link_options.get("master_addr") else k
        threads = max(1, (os.cpu_count() or 1) // local)
    specs = list(compressors) if compressors is not None else _default_compressors()
    for spec in specs:  # unknown names fail before any work
        compressor_from_spec(spec)
    if link is None:
        link = measure_link(k, **link_options)
    compute = measure_compute(model, batch, loss_fn=loss_fn, repeat=repeat, threads=threads)
    buckets = ddp_buckets([p.numel() for p in model.parameters() if p.requires_grad])
    d = sum(buckets)
    candidates = measure_candidates(specs, buckets, k, repeat=repeat, threads=threads)
    predictions = predict(candidates, link=link, processes=k, compute=compute, d=d)
    by_name = {c.name: c for c in candidates}
    others = [p for p in predictions if p.name not in (FP32, FP16)]
    break_even = None
    if others:
        best = min(others, key=lambda p: p.step)
        break_even = break_even_bandwidth(by_name[best.name], by_name[FP32], latency=link.latency,
                                          processes=k, compute=compute)
    return Advice(link=link, processes=k, d=d, buckets=buckets, compute=compute, predictions=predictions,
                  verdict=verdict(predictions, break_even=break_even), break_even=break_even,
                  notes=[f"{threads} thread(s) per rank for the local timings"])


def format_advice(advice: Advice) -> str:
    """The table (one row per candidate, fastest first) and the verdict."""
    a = advice
    lines = [
        f"link: {a.link.describe()}; {a.processes} processes",
        f"model: {a.d:,} parameters in {len(a.buckets)} DDP bucket(s); compute "
        f"{_ms(a.compute.total)} per step (forward {_ms(a.compute.forward)}, backward {_ms(a.compute.backward)}, "
        f"optimizer {_ms(a.compute.optimizer)}; {'; '.join(a.notes)})",
        "",
    ]
    head = (f"| {'method':<18} | {'bytes/rank/step':>15} | {'bits/coord':>10} | {'codec ms':>9} | {'comm ms':>9} "
            f"| {'step ms':>9} | {'vs fp32':>7} | {'vs fp16':>7} |")
    lines += [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for p in sorted(a.predictions, key=lambda p: p.step):
        vs16 = "-" if p.vs_fp16 is None else f"{p.vs_fp16:.2f}x"
        lines.append(f"| {p.name:<18} | {p.payload_bytes:15,.0f} | {p.bits_per_coordinate:10.3f} | {1e3 * p.codec:9.2f} "
                     f"| {1e3 * p.comm:9.2f} | {1e3 * p.step:9.2f} | {p.vs_fp32:6.2f}x | {vs16:>7} |")
    lines += ["", f"verdict: {a.verdict}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- helpers
def _default_compressors() -> list[str]:
    from commpress.compressors import names

    registered = set(names())
    return [s for s in DEFAULT_COMPRESSORS if s.partition(":")[0] in registered]


def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class _threads:
    """Run a block with ``n`` intra-op threads (None: unchanged), restoring the setting after."""

    def __init__(self, n: int | None) -> None:
        self.n = n

    def __enter__(self) -> None:
        self.saved = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(_check_int("threads", self.n, 1))

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.saved)


def _check_processes(processes: Any) -> int:
    return _check_int("processes", processes, 1)


def _check_int(what: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{what} must be an integer >= {low}; got {value!r} ({type(value).__name__}).")
    if value < low:
        raise ConfigError(f"{what} must be >= {low}; got {value}.")
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.1f} ms" if seconds >= 1e-3 else f"{1e6 * seconds:.0f} us"


def _fmt_seconds(seconds: float) -> str:
    return _ms(seconds) if seconds < 1 else f"{seconds:.2f} s"


def _fmt_rate(bytes_per_second: float) -> str:
    bits = 8 * bytes_per_second
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.3g} bit/s"
