"""``microadam`` (Modoranu et al., NeurIPS 2024): MicroAdam against Adam on an MLP on scikit-learn's digits
(training loss, held-out accuracy, step time) and the optimizer-state memory (the trained MLP's tensors,
and the layout formula on BERT-Base's parameter shapes). See ``microadam.toml`` for the claim and the
choices.

No ``[sweep]``: :func:`compute` trains both optimizers itself, seed by seed, and stores everything in
``results.data``. The verdicts are pure functions of those numbers (:func:`loss_within`,
:func:`accuracy_within`, :func:`memory_near`).
"""

from __future__ import annotations

import math
import time
from statistics import median as _median
from typing import Any

from commpress.reproductions._compare import rounded
from commpress.reproductions._results import Claim

ADAM, MICRO = "Adam", "MicroAdam"


# ----------------------------------------------------------------------------- pure verdicts
def loss_within(micro: float, adam: float, rel: float) -> tuple[bool | None, float]:
    """MicroAdam's loss at most ``(1 + rel)`` times Adam's. Returns (held, ratio); held is None when the
    ratio cannot be formed (a non-finite loss, or Adam's loss 0)."""
    if not (math.isfinite(micro) and math.isfinite(adam)) or adam <= 0:
        return None, math.nan
    ratio = micro / adam
    return bool(ratio <= 1.0 + rel), ratio


def accuracy_within(micro: float, adam: float, pp: float) -> tuple[bool | None, float]:
    """MicroAdam's accuracy (a fraction) at most ``pp`` percentage points below Adam's. Returns (held,
    difference in points); held is None for a non-finite accuracy."""
    if not (math.isfinite(micro) and math.isfinite(adam)):
        return None, math.nan
    diff = 100.0 * (micro - adam)
    return bool(diff >= -pp), diff


def memory_near(bytes_per_param: float, target: float, within: float) -> bool:
    """Bytes per parameter within ``within`` of ``target`` (and below Adam's 8)."""
    return math.isfinite(bytes_per_param) and abs(bytes_per_param - target) <= within and bytes_per_param < 8.0


def bert_base_sizes() -> list[int]:
    """Entries of every parameter tensor of BERT-Base (uncased: vocabulary 30,522, 12 layers, hidden 768,
    FFN 3,072, 512 positions, 2 token types, the pooler), 109,482,240 in all."""
    h, f = 768, 3072
    sizes = [30522 * h, 512 * h, 2 * h, h, h]  # embeddings and their LayerNorm
    for _ in range(12):
        sizes += [h * h, h] * 4            # query, key, value, attention output
        sizes += [h, h]                    # LayerNorm
        sizes += [f * h, f, h * f, h]      # FFN
        sizes += [h, h]                    # LayerNorm
    sizes += [h * h, h]                    # pooler
    return sizes


# ----------------------------------------------------------------------------- runs
def _data(params: dict) -> dict:
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.int64)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(int(params.get("split_seed", 0))))
    n_test = int(round(float(params.get("holdout", 0.2)) * len(X)))
    test, train = perm[:n_test], perm[n_test:]
    return {"X_train": X[train], "y_train": y[train], "X_test": X[test], "y_test": y[test]}


def _model(hidden: int, gen):
    """64-hidden-10 ReLU MLP, initialised as torch.nn.Linear does (uniform, bound 1/sqrt(fan_in)) from
    ``gen``."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1.0 / math.sqrt(layer.in_features)
            for p in (layer.weight, layer.bias):
                p.copy_(torch.empty_like(p).uniform_(-bound, bound, generator=gen))
    return model


def train(name: str, seed: int, params: dict, data: dict) -> dict[str, Any]:
    """Train the MLP with ``name`` (Adam or MicroAdam) for ``epochs``; returns the training loss per epoch
    (full training set), the final training loss, the held-out accuracy, the median step time (s) and,
    for MicroAdam, the memory report of the trained optimizer."""
    import torch

    from commpress.optim import MicroAdam

    gen = torch.Generator().manual_seed(int(seed))
    model = _model(int(params.get("hidden", 128)), gen)
    lr = float(params.get("lr", 0.03))
    if name == ADAM:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    else:
        opt = MicroAdam(model.parameters(), lr=lr, m=int(params.get("m", 10)),
                        density=float(params.get("density", 0.01)),
                        quant_block=int(params.get("quant_block", 64)),
                        topk_block=int(params.get("topk_block", 16384)))
    X, y = data["X_train"], data["y_train"]
    bs, epochs, warmup = int(params.get("batch_size", 32)), int(params.get("epochs", 20)), int(params.get("warmup", 20))
    per_epoch = len(X) // bs
    steps = epochs * per_epoch
    warmup = min(warmup, steps - 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / max(warmup, 1), max(steps - s, 0) / max(steps - warmup, 1)))
    loss_fn = torch.nn.functional.cross_entropy

    def full_loss() -> float:
        with torch.no_grad():
            return float(loss_fn(model(X), y))

    curve, times = [full_loss()], []
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for b in range(per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            start = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - start)
            schedule.step()
        curve.append(full_loss())
    with torch.no_grad():
        acc = float((model(data["X_test"]).argmax(dim=1) == data["y_test"]).float().mean())
    out = {"curve": curve, "final_loss": curve[-1], "accuracy": acc, "step_seconds": _median(times),
           "steps": steps}
    if name == MICRO:
        rep = opt.memory_report()
        out["memory"] = {"state_bytes": rep.state_bytes, "formula_bytes": rep.formula_bytes,
                         "adam_bytes": rep.adam_bytes, "numel": rep.numel,
                         "held_by_tensors": sum(v.numel() * v.element_size() for s in opt.state.values()
                                                for v in s.values() if isinstance(v, torch.Tensor))}
    return out


def bert_memory(params: dict) -> dict[str, Any]:
    """MicroAdam's state bytes on BERT-Base's shapes (layout formula, the GLUE setting), beside Adam's."""
    from commpress.optim.microadam import _layout, microadam_state_bytes

    group = {"topk_block": int(params.get("topk_block", 16384)), "density": float(params.get("density", 0.01)),
             "k": None, "quant_block": int(params.get("bert_quant_block", 100_000))}
    m = int(params.get("m", 10))
    total, numel = 0, 0
    for d in bert_base_sizes():
        layout = _layout(d, group)
        total += microadam_state_bytes(d, m=m, k=layout.k, q=layout.q)
        numel += d
    return {"numel": numel, "microadam_bytes": total, "adam_bytes": 8 * numel, "bytes_per_param": total / numel,
            "quant_block": group["quant_block"]}


def compute(results) -> None:
    import torch

    params = results.params
    data = _data(params)
    seeds = [int(s) for s in params.get("seeds", [0, 1, 2, 3, 4])]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # step times comparable between the two optimizers
    try:
        runs = {name: {str(s): train(name, s, params, data) for s in seeds} for name in (ADAM, MICRO)}
    finally:
        torch.set_num_threads(threads)
    results.data.update({"seeds": seeds, "runs": runs, "bert_base": bert_memory(params),
                         "n_train": len(data["X_train"]), "n_test": len(data["X_test"])})


# ----------------------------------------------------------------------------- check
def _med(runs: dict, key: str) -> float:
    vals = [float(r[key]) for r in runs.values()]
    return _median(vals) if vals else math.nan


def _spread(runs: dict, key: str, digits: int = 3, scale: float = 1.0) -> str:
    vals = [float(r[key]) * scale for r in runs.values()]
    if not vals:
        return "no runs"
    return f"{rounded(_median(vals), digits)} [{rounded(min(vals), digits)}–{rounded(max(vals), digits)}]"


def check(results) -> list[Claim]:
    params, data = results.params, results.data
    runs = data.get("runs", {})
    adam, micro = runs.get(ADAM, {}), runs.get(MICRO, {})
    rel, pp = float(params.get("loss_within", 0.05)), float(params.get("acc_within_pp", 1.0))
    claims = []

    # 1. final training loss within 5% of Adam's
    held, ratio = loss_within(_med(micro, "final_loss"), _med(adam, "final_loss"), rel)
    claims.append(Claim(
        f"MicroAdam (m = 10, density 1%) ends within {rel:.0%} of Adam's training loss (medians over seeds)",
        bool(held), {"final loss Adam": _spread(adam, "final_loss"),
                     "final loss MicroAdam": _spread(micro, "final_loss"),
                     "ratio of medians": rounded(ratio), "seeds": len(micro)},
        "" if held or held is None else
        "MicroAdam lags: with 1% density only m·k of the d entries move per step, and a tiny model trained from "
        "scratch needs every entry to move (the paper fine-tunes pretrained models); near a loss of 0 a 5% "
        "relative gap is also a small absolute one.",
        "" if held is not None else "a final loss is not finite, or Adam's is 0 (no ratio)"))

    # 2. held-out accuracy competitive
    held, diff = accuracy_within(_med(micro, "accuracy"), _med(adam, "accuracy"), pp)
    claims.append(Claim(
        f"MicroAdam's held-out accuracy is competitive with Adam's (median at most {pp:g} point below)",
        bool(held), {"accuracy Adam (%)": _spread(adam, "accuracy", 4, 100.0),
                     "accuracy MicroAdam (%)": _spread(micro, "accuracy", 4, 100.0),
                     "difference of medians (points)": rounded(diff)},
        "" if held or held is None else "MicroAdam has not caught up with Adam within the epochs run.",
        "" if held is not None else "an accuracy is not finite (no runs?)"))

    # 3. memory
    mem = [r.get("memory", {}) for r in micro.values()]
    bert = data.get("bert_base", {})
    target, within = float(params.get("memory_per_param", 0.9)), float(params.get("memory_within", 0.05))
    if not mem or not bert:
        why = "no MicroAdam run or no BERT-Base numbers"
    else:
        why = ""
    exact = bool(mem) and all(x["state_bytes"] == x["formula_bytes"] == x["held_by_tensors"] for x in mem)
    bpp = float(bert.get("bytes_per_param", math.nan))
    near = memory_near(bpp, target, within)
    m0 = mem[0] if mem else {}
    held = not why and exact and near
    claims.append(Claim(
        f"MicroAdam's state is about {target:g} bytes per parameter (density 1%, m = 10) against Adam's 8: on "
        f"BERT-Base within {within:g} of {target:g}, and the state tensors hold exactly the layout formula",
        held, {"BERT-Base bytes/param": rounded(bpp, 4), "BERT-Base MicroAdam / Adam": rounded(
            bert.get("microadam_bytes", math.nan) / bert.get("adam_bytes", math.nan) if bert else math.nan, 4),
               "BERT-Base parameters": bert.get("numel"), "BERT-Base quant_block": bert.get("quant_block"),
               "MLP state bytes (held)": m0.get("held_by_tensors"), "MLP formula bytes": m0.get("formula_bytes"),
               "MLP bytes/param": rounded(m0["formula_bytes"] / m0["numel"], 4) if m0 else None,
               "MLP Adam bytes": m0.get("adam_bytes"), "held = formula on every seed": exact},
        "" if held or why else (
            "the held state differs from the formula" if not exact else
            f"BERT-Base needs {bpp:.3g} bytes per parameter, not within {within:g} of {target:g}"), why))

    # 4. running time: the paper's CUDA kernels are not what runs here
    t_adam, t_micro = _med(adam, "step_seconds"), _med(micro, "step_seconds")
    claims.append(Claim(
        "MicroAdam runs in time similar to Adam (the paper's fused CUDA kernels)",
        False, {"CPU step time Adam (ms)": rounded(1e3 * t_adam),
                "CPU step time MicroAdam (ms)": rounded(1e3 * t_micro),
                "CPU ratio MicroAdam / Adam": rounded(t_micro / t_adam) if t_adam > 0 else None},
        unmeasurable="the claim is about the authors' CUDA kernels on a GPU; this is a pure-PyTorch optimizer on a "
                     "CPU with a 10k-parameter model (per-tensor Python overhead dominates); see "
                     "benchmarks/microadam.py for a GPU timing"))
    return claims


def figure(results, path):
    """Training loss (full training set) per epoch, median over seeds with min–max bands, both optimizers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from commpress.reproductions._figure import finish_figure

    runs = results.data.get("runs", {})
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, style in ((ADAM, "-"), (MICRO, "--")):
        curves = np.array([r["curve"] for r in runs.get(name, {}).values()])
        if curves.size == 0:
            continue
        epochs = np.arange(curves.shape[1])
        ax.plot(epochs, np.median(curves, axis=0), style, label=name)
        ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.legend()
    return finish_figure(fig, results, path, f"{results.name}: MLP on digits, MicroAdam (m = 10, 1%) vs Adam")


def report_extra(results) -> str:
    """Markdown: the seeds and, per optimizer and seed, the final training loss, the held-out accuracy and the
    median step time."""
    data = results.data
    runs = data.get("runs", {})
    seeds = data.get("seeds", [])
    lines = ["## Runs per seed", "",
             f"Seeds {', '.join(map(str, seeds))} per optimizer (the seed drives the initialisation and the batch "
             f"order; the split of {data.get('n_train')} training / {data.get('n_test')} held-out images is fixed); "
             "the verdicts read medians over the seeds, spreads are `median [min–max]`.", "",
             "| optimizer | seed | steps | final training loss | held-out accuracy (%) | median step time (ms, CPU) |",
             "|---|---|---|---|---|---|"]
    for name, per_seed in runs.items():
        for seed, r in per_seed.items():
            lines.append(f"| {name} | {seed} | {r['steps']} | {r['final_loss']:.4g} | {100 * r['accuracy']:.2f} | "
                         f"{1e3 * r['step_seconds']:.3g} |")
    bert = data.get("bert_base", {})
    if bert:
        lines += ["", f"BERT-Base ({bert['numel']:,} parameters, quant_block {bert['quant_block']:,}): MicroAdam "
                      f"{bert['microadam_bytes']:,} bytes ({bert['bytes_per_param']:.4f} per parameter), Adam "
                      f"{bert['adam_bytes']:,} bytes (8 per parameter)."]
    return "\n".join(lines) + "\n"
