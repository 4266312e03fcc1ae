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
decodes all :math:`k` of them. FSDP2 (``fsdp=True``) adds two all-gathers of the parameters and its
reduce-scatter, or commpress's all-to-all of payloads (:func:`measure_fsdp_candidates`).

A backend need not run every collective as a ring, nor at one efficiency: each collective's time
is the ring model's times a factor of the :class:`Link` (``FACTORS``: all-reduce, all-gather,
reduce-scatter, all-gather into a tensor), which :func:`measure_link` times against the line it
fits (gloo across veth at 100 Mbit/s, over tc's rate: 1.1, 1.6, 2.2 and 1.5);
:meth:`Link.rebased` moves them to a stated bandwidth.

DDP's own fp32 all-reduce and PyTorch's fp16 hook run asynchronously, so their communication can
hide behind the backward pass: their step is predicted as
:math:`t_{\text{fwd}} + \max(t_{\text{bwd}}, T_{\text{comm}}) + t_{\text{opt}} + t_{\text{codec}}`,
the baselines' best case. On request (``baselines=``, ``commpress advise --baselines``) PyTorch's
bf16 hook and its PowerSGD hook (Vogels, Karimireddy, Jaggi, NeurIPS 2019) are predicted the same
way: bf16 as fp16; PowerSGD with the bytes of its factors P and Q (:func:`powersgd_payload`), three
all-reduces per bucket one after the other (not hidden behind the backward pass), and the hook's own
cost timed for real in a one-process DDP against the plain model's step (:func:`measure_powersgd_hook`;
its matrix products alone are 3x cheaper than the hook, which is why an estimate from them predicted
PowerSGD 4x too fast). The commpress hooks
are predicted as running their collectives synchronously (a conservative bound since they overlap):
:math:`t_{\text{compute}} + t_{\text{codec}} + T_{\text{comm}}`. Encoding and decoding are
measured on this machine on vectors of the model's bucket sizes.

The pure part (:func:`predict`, :func:`verdict`, :func:`fit_link`, :func:`break_even_bandwidth`)
takes numbers only; :func:`measure_link`, :func:`measure_compute` and :func:`measure_candidates`
measure them; :func:`advise` does both and :func:`format_advice` prints the table and the verdict.

The code, by job: ``_model`` (the link and step model, DDP's buckets, fitting a link),
``_measure`` (timings of the compute, the codecs and the link), ``_compressors`` (compressor specs),
``_demo_models`` (built-in models), ``_units`` (reading and writing bandwidths and latencies),
``_format`` (the verdict and the table), ``_threads`` (thread control). Import from this package:
the modules are private. :func:`advise` lives here and looks up the measurements in this package's
namespace, so replacing ``commpress.integrations.advise.measure_compute`` (a test's monkeypatch)
changes what it measures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from commpress.compressors import Compressor
from commpress.errors import ConfigError
from commpress.integrations.advise._checks import _check_processes
from commpress.integrations.advise._compressors import DEFAULT_COMPRESSORS, _default_compressors, compressor_from_spec
from commpress.integrations.advise._demo_models import make_model
from commpress.integrations.advise._format import format_advice, fsdp_verdict, verdict
from commpress.integrations.advise._measure import (
    fsdp_units,
    measure_candidates,
    measure_fsdp_candidates,
    measure_compute,
    measure_link,
    measure_powersgd_hook,
)
from commpress.integrations.advise._model import (
    BASELINES,
    BF16,
    BUCKET_CAP_BYTES,
    FACTORS,
    FIRST_BUCKET_BYTES,
    FP16,
    FP32,
    FSDP2,
    Candidate,
    Compute,
    Link,
    Prediction,
    allgather_seconds,
    all_to_all_seconds,
    allreduce_seconds,
    break_even_bandwidth,
    ddp_buckets,
    fit_link,
    is_fsdp,
    is_pytorch,
    powersgd_name,
    powersgd_payload,
    predict,
    reduce_scatter_seconds,
)
from commpress.integrations.advise._units import BANDWIDTH_UNITS, parse_bandwidth, parse_latency

__all__ = [
    "BASELINES",
    "BF16",
    "FSDP2",
    "Advice",
    "Candidate",
    "Compute",
    "DEFAULT_COMPRESSORS",
    "FACTORS",
    "Link",
    "Prediction",
    "advise",
    "allgather_seconds",
    "all_to_all_seconds",
    "allreduce_seconds",
    "break_even_bandwidth",
    "compressor_from_spec",
    "ddp_buckets",
    "fit_link",
    "fsdp_units",
    "fsdp_verdict",
    "is_fsdp",
    "is_pytorch",
    "powersgd_name",
    "powersgd_payload",
    "format_advice",
    "make_model",
    "measure_candidates",
    "measure_compute",
    "measure_fsdp_candidates",
    "measure_link",
    "measure_powersgd_hook",
    "parse_bandwidth",
    "parse_latency",
    "predict",
    "reduce_scatter_seconds",
    "verdict",
]


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
           link_options: dict[str, Any] | None = None, baselines: Sequence[str] = (), fsdp: bool = False,
           fsdp_params: Sequence[str] = ()) -> Advice:
    """Measure what is not given and predict a DDP step of ``model`` per compressor.

    ``baselines``: PyTorch's other hooks to predict beside fp32 and fp16, any of ``"bf16"`` and
    ``"powersgd:R"`` (``BASELINES`` = bf16, PowerSGD rank 1 and 4).
    ``fsdp``: also predict FSDP2 (``fully_shard`` on every module with parameters of its own) with its
    own reduce-scatter and with commpress's compressed one per compressor
    (:func:`measure_fsdp_candidates`); ``fsdp_params``: with the parameter all-gathers compressed too
    (modes of :mod:`commpress.integrations.fsdp_params`, e.g. ``("int8",)``).

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
    shapes = [tuple(p.shape) for p in model.parameters() if p.requires_grad]
    ranks = sorted({int(b.partition(":")[2]) for b in baselines
                    if str(b).startswith("powersgd:") and str(b).partition(":")[2].isdigit()})
    powersgd_codec = None
    notes = [f"{threads} thread(s) per rank for the local timings"]
    if ranks:
        powersgd_codec = measure_powersgd_hook(model, batch, ranks, loss_fn=loss_fn, repeat=repeat, threads=threads)
        notes.append("PowerSGD: its hook timed in a one-process DDP" if powersgd_codec is not None else
                     "PowerSGD: a process group is already running here, so its hook is estimated from its "
                     "matrix products (a lower bound)")
    candidates = measure_candidates(specs, buckets, k, repeat=repeat, threads=threads, baselines=baselines,
                                    shapes=shapes, powersgd_codec=powersgd_codec)
    if fsdp:
        candidates += measure_fsdp_candidates(specs, fsdp_units(model), k, repeat=repeat, threads=threads,
                                              params=fsdp_params)
    predictions = predict(candidates, link=link, processes=k, compute=compute, d=d)
    by_name = {c.name: c for c in candidates}
    others = [p for p in predictions if not is_pytorch(p.name)]
    break_even = None
    if others:
        best = min(others, key=lambda p: p.step)
        break_even = break_even_bandwidth(by_name[best.name], by_name[FP32], latency=link.latency,
                                          processes=k, compute=compute, factors=link)
    return Advice(link=link, processes=k, d=d, buckets=buckets, compute=compute, predictions=predictions,
                  verdict=verdict(predictions, break_even=break_even), break_even=break_even, notes=notes)
