"""The advice in words: the verdict sentence and the table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from commpress.integrations.advise._model import FP16, FP32, FSDP2, Prediction, is_fsdp, is_pytorch
from commpress.integrations.advise._units import _fmt_rate, _fmt_seconds, _ms

if TYPE_CHECKING:
    from commpress.integrations.advise import Advice


def verdict(predictions: Sequence[Prediction], *, break_even: float | None = None) -> str:
    """One plain sentence: which is fastest, and whether compression pays on this link.

    ``break_even``: the bandwidth (bytes/s) below which the best compressor would beat fp32
    all-reduce (see :func:`break_even_bandwidth`), quoted when compression does not pay.

    The sentence compares the DDP rows. FSDP2 rows, if any, get a second sentence against FSDP2's own
    collectives: a user who shards for memory chooses among those, not between them and DDP.
    """
    ddp = [p for p in predictions if not is_fsdp(p.name)]
    fsdp = [p for p in predictions if is_fsdp(p.name)]
    text = _ddp_verdict(ddp, break_even)
    return text + (" " + fsdp_verdict(fsdp) if fsdp else "")


def fsdp_verdict(predictions: Sequence[Prediction]) -> str:
    """One sentence on the FSDP2 rows: the fastest, against FSDP2's own reduce-scatter and gathers."""
    fastest = min(predictions, key=lambda p: p.step)
    own = next((p for p in predictions if p.name == FSDP2), None)
    if own is None:
        return f"Sharded (FSDP2): {fastest.name} is fastest ({_fmt_seconds(fastest.step)} per step)."
    if fastest is own:
        compressed = [p for p in predictions if p is not own]
        text = f"Sharded (FSDP2): FSDP2's own collectives are fastest ({_fmt_seconds(own.step)} per step)"
        if compressed:
            best = min(compressed, key=lambda p: p.step)
            text += f"; the best compressed one ({best.name}) would take {_fmt_seconds(best.step)}"
        return text + "."
    return (f"Sharded (FSDP2): {fastest.name} is fastest ({_fmt_seconds(fastest.step)} per step), "
            f"{own.step / fastest.step:.1f}x faster than FSDP2's own collectives ({_fmt_seconds(own.step)}).")


def _ddp_verdict(predictions: Sequence[Prediction], break_even: float | None) -> str:
    by_name = {p.name: p for p in predictions}
    others = [p for p in predictions if not is_pytorch(p.name)]
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
    if is_pytorch(fastest.name):  # bf16 or PowerSGD
        text = (f"on this link commpress's compressors do not pay: PyTorch's {fastest.name} is fastest "
                f"({_ms(fastest.step)} per step, {fastest.vs_fp32:.1f}x faster than fp32 all-reduce)")
        if best is not None:
            text += f"; the best compressor ({best.name}) would take {_ms(best.step)}"
        return text + "."
    text = (f"compression pays: {fastest.name} is fastest ({_ms(fastest.step)} per step), "
            f"{fastest.vs_fp32:.1f}x faster than fp32 all-reduce")
    if fastest.vs_fp16 is not None:
        text += f" and {fastest.vs_fp16:.1f}x faster than the fp16 hook"
    return text + "."


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
    w = max([18] + [len(p.name) for p in a.predictions])
    sharded = any(p.param_bits_per_coordinate is not None for p in a.predictions)  # a param bits column
    head = (f"| {'method':<{w}} | {'bytes/rank/step':>15} | {'bits/coord':>10} | "
            + (f"{'param bits':>10} | " if sharded else "")
            + f"{'codec ms':>9} | {'comm ms':>9} | {'step ms':>9} | {'vs fp32':>7} | {'vs fp16':>7} |")
    lines += [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for p in sorted(a.predictions, key=lambda p: p.step):
        vs16 = "-" if p.vs_fp16 is None else f"{p.vs_fp16:.2f}x"
        params = "-" if p.param_bits_per_coordinate is None else f"{p.param_bits_per_coordinate:.3f}"
        lines.append(f"| {p.name:<{w}} | {p.payload_bytes:15,.0f} | {p.bits_per_coordinate:10.3f} | "
                     + (f"{params:>10} | " if sharded else "")
                     + f"{1e3 * p.codec:9.2f} | {1e3 * p.comm:9.2f} | {1e3 * p.step:9.2f} | {p.vs_fp32:6.2f}x | {vs16:>7} |")
    if sharded:
        lines += ["", "bytes/rank/step and bits/coord: the gradient's payload (FSDP2 rows: the reduce-scatter's "
                      "share leaving a rank); param bits: FSDP2's two parameter all-gathers leaving a rank, per "
                      "coordinate and step"]
    lines += ["", f"verdict: {a.verdict}"]
    return "\n".join(lines)
