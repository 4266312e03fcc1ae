"""Claim check of ``neolithic-images`` (NEOLITHIC talk, CIFAR-10 Tables 1-2), scaled down to a small
CNN on MNIST: test accuracy of NEOLITHIC, P-SGD, QSGD, MEM-SGD, DoubleSqueeze and EF21-SGD under
top-k 5% / 1% and 4-bit quantization, mean ± std over seeds, beside the paper's table.
See ``neolithic-images.toml`` for the claim and the choices.

The file has no ``[sweep]``: :func:`compute` runs the sweeps itself (one per compression setting,
NEOLITHIC in its own sweep with T/R outer iterations, P-SGD once), through the experiments runner
with :func:`image_runner`, which also stores the test accuracy of the last iterate. Runs are
stored as in any sweep (``panels/<name>/runs/<id>/``), so an interrupted reproduction resumes.
The verdicts are pure functions of the accuracy table (:func:`on_par`, :func:`least_accurate`,
:func:`best_or_within_std`).
"""

from __future__ import annotations

import functools
import json
import math
import sys
from statistics import fmean, stdev
from typing import Any

from commpress.reproductions._results import Claim, Panel
from commpress.reproductions._seeds import median

PSGD, QSGD, MEM, DS, EF21, NEO = "P-SGD", "QSGD", "MEM-SGD", "DoubleSqueeze", "EF21-SGD", "NEOLITHIC"
#: label -> registered algorithm
ALGORITHMS = {PSGD: "psgd", QSGD: "qsgd", MEM: "ef", DS: "double_squeeze", EF21: "ef21_sgd", NEO: "neolithic"}

#: The talk's Tables 1-2 (CIFAR-10; ResNet-18 mean, std, ResNet-20 mean, std), copied from the seed text.
#: Table 1 lists P-SGD once, for both compression ratios.
PAPER = {
    "top-k 5%": {PSGD: (93.99, 0.52, 91.62, 0.13), MEM: (94.35, 0.01, 91.27, 0.08), DS: (94.11, 0.14, 90.73, 0.02),
                 EF21: (87.37, 0.49, 65.82, 4.86), NEO: (94.63, 0.09, 91.43, 0.10)},
    "top-k 1%": {PSGD: (93.99, 0.52, 91.62, 0.13), MEM: (93.99, 0.11, 89.68, 0.17), DS: (93.54, 0.17, 89.35, 0.04),
                 EF21: (67.78, 2.14, 56.0, 2.257), NEO: (94.155, 0.10, 89.82, 0.37)},
    "4-bit quantization": {PSGD: (93.99, 0.52, 91.62, 0.13), QSGD: (92.86, 0.34, 90.24, 0.22),
                           MEM: (94.47, 0.27, 91.36, 0.07), DS: (93.35, 0.39, 90.89, 0.14),
                           NEO: (93.87, 0.46, 91.25, 0.14)},
}


# ----------------------------------------------------------------------------- pure verdicts
def on_par(neo_mean: float, psgd_mean: float, pp: float) -> tuple[bool, float]:
    """NEOLITHIC on par with P-SGD: mean accuracy (in %) at most ``pp`` points below. Returns (held, difference)."""
    diff = neo_mean - psgd_mean
    return bool(math.isfinite(diff) and diff >= -pp), diff


def least_accurate(means: dict[str, float], method: str) -> tuple[bool, int]:
    """``method`` has the lowest mean accuracy of the table. Returns (held, its rank from the top, 1-based)."""
    order = sorted(means, key=lambda m: -means[m])
    return order[-1] == method and sum(v == means[method] for v in means.values()) == 1, order.index(method) + 1


def best_or_within_std(table: dict[str, tuple[float, float]], method: str) -> tuple[bool, str, float]:
    """``method`` (mean, std) is the most accurate, or its mean is within the larger of the two stds of
    the most accurate's. Returns (held, the most accurate method, the gap in points)."""
    best = max(table, key=lambda m: table[m][0])
    gap = table[best][0] - table[method][0]
    return bool(gap <= max(table[best][1], table[method][1])), best, gap


# ----------------------------------------------------------------------------- runs
@functools.lru_cache(maxsize=2)
def _problem(blob: str):
    from commpress import problems

    data = json.loads(blob)
    return problems.make(data["name"], **data["params"])


def image_runner(spec):
    """Execute one run (:func:`commpress.simulate.simulate`) and add the accuracies of its last iterate."""
    from commpress.experiments.config import compressor_arg
    from commpress.experiments.runner import RunOutput, _plain
    from commpress.simulate import simulate

    problem = _problem(json.dumps(spec.problem, sort_keys=True))
    hist = simulate(problem, spec.algorithm, compressor=compressor_arg(spec.compressor), iterations=spec.iterations,
                    seed=spec.seed, stepsize=spec.stepsize, stepsize_multiplier=spec.stepsize_multiplier,
                    downlink_compressor=compressor_arg(spec.downlink_compressor), record_every=spec.record_every,
                    **spec.params)
    columns = {"iteration": hist.iterations.tolist(), "bits_up": hist.bits_up.tolist(),
               "bits_down": hist.bits_down.tolist(), "grad_norm_sq": hist.grad_norm_sq.tolist(),
               "loss": hist.loss.tolist(), "wall_time": hist.wall_time.tolist()}
    diverged = hist.status == "diverged"
    return RunOutput(columns, {"status": hist.status, "stepsize": float(hist.stepsize), "f_star": None,
                               "params": _plain(hist.params),
                               "test_accuracy": 0.1 if diverged else problem.test_accuracy(hist.x),
                               "train_accuracy": 0.1 if diverged else problem.accuracy(hist.x),
                               "dataset_side": int(problem.side)})


def _method(label: str, compressor: dict | None, params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"algorithm": ALGORITHMS[label], "label": label,
                           "params": {"batch_size": int(params["batch_size"])}}
    if label != PSGD:
        out["compressor"] = dict(compressor)
    if label == DS:
        out["downlink_compressor"] = dict(compressor)
    if label == NEO:
        out["params"]["R"] = int(params["R"])
    return out


def sweep_configs(params: dict[str, Any], quick: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(panel name, label, sweep config) of every sweep: P-SGD once, then per setting the baselines and NEOLITHIC."""
    T, R = int(params["rounds"]), int(params["R"])
    problem = {"name": "cnn", "dataset": params["dataset"], "n_clients": int(params["n_clients"]),
               "holdout": float(params["holdout"]), "seed": 0}
    if params.get("samples") is not None:
        problem["samples"] = int(params["samples"])
    records = max(1, int(params.get("records", 4)))

    def run(iterations: int) -> dict[str, Any]:
        return {"stepsize": float(params["lr"]), "stepsize_multipliers": [1.0], "seeds": list(params["seeds"]),
                "iterations": iterations, "record_every": max(1, iterations // records)}

    tag = "neolithic-images" + ("-quick" if quick else "")
    out = [("psgd", "P-SGD (no compression)",
            {"name": f"{tag}-psgd", "problem": problem, "run": run(T), "methods": [_method(PSGD, None, params)]})]
    for s in params["settings"]:
        base = [m for m in s["methods"] if m != NEO]
        out.append((s["name"], s["label"], {"name": f"{tag}-{s['name']}", "problem": problem, "run": run(T),
                                              "methods": [_method(m, s["compressor"], params) for m in base]}))
        if NEO in s["methods"]:
            out.append((f"{s['name']}-neo", f"{s['label']}, NEOLITHIC (K = T/R)",
                        {"name": f"{tag}-{s['name']}-neo", "problem": problem, "run": run(T // R),
                         "methods": [_method(NEO, s["compressor"], params)]}))
    return out


def _stats(values: list[float]) -> dict[str, Any]:
    """Accuracies (fractions) of the seeds -> percentages: median (what the verdicts read), min, max, mean, std."""
    pct = [100.0 * v for v in values]
    if not pct or not all(math.isfinite(v) for v in pct):  # a seed without an accuracy: nothing to summarise
        return {"median": math.nan, "min": math.nan, "max": math.nan, "mean": math.nan, "std": math.nan, "values": pct}
    return {"median": median(pct), "min": min(pct), "max": max(pct), "mean": fmean(pct),
            "std": stdev(pct) if len(pct) > 1 else 0.0, "values": pct}


def compute(results) -> None:
    from commpress.experiments.config import load_config
    from commpress.experiments.runner import run as run_sweep

    params = results.params
    configs = sweep_configs(params, results.quick)
    for k, (name, label, cfg) in enumerate(configs, 1):
        config = load_config(cfg)
        if not results.quiet:
            print(f"[{results.name}] sweep {k}/{len(configs)}: {label}", file=sys.stderr)
        sweep = run_sweep(config, out=results.out / "panels" / name, jobs=results.jobs, quiet=results.quiet,
                          plots=False, runner=image_runner)
        results.panels[name] = Panel(name, label, config, sweep.summary, sweep.out, sweep.runs)
        results.computed += sweep.computed
        results.resumed += sweep.resumed

    def accuracies(panel: str, label: str, key: str = "test_accuracy") -> list[float]:
        p = results.panels[panel]
        return [float(p.runs[i]["summary"][key]) for i in p.summary["methods"][label]["run_ids"]]

    table: dict[str, dict[str, Any]] = {}
    train: dict[str, dict[str, Any]] = {}
    for s in params["settings"]:
        row = {PSGD: _stats(accuracies("psgd", PSGD))}
        trow = {PSGD: _stats(accuracies("psgd", PSGD, "train_accuracy"))}
        for m in s["methods"]:
            panel = f"{s['name']}-neo" if m == NEO else s["name"]
            row[m] = _stats(accuracies(panel, m))
            trow[m] = _stats(accuracies(panel, m, "train_accuracy"))
        table[s["label"]] = row
        train[s["label"]] = trow
    # training loss: NEOLITHIC after its T/R updates against P-SGD after as many updates and after T
    T, R = int(params["rounds"]), int(params["R"])

    def loss_at(panel: str, label: str, iteration: int) -> float | None:
        p = results.panels[panel]
        vals = []
        for i in p.summary["methods"][label]["run_ids"]:
            m = p.runs[i]["metrics"]
            hit = [float(v) for t, v in zip(m["iteration"], m["loss"]) if int(t) == iteration]
            if not hit:
                return None
            vals.append(hit[0])
        return median(vals)

    losses = {"P-SGD after T rounds": loss_at("psgd", PSGD, T),
              "P-SGD after T/R rounds (as many updates as NEOLITHIC)": loss_at("psgd", PSGD, T // R)}
    for s in params["settings"]:
        if NEO in s["methods"]:
            losses[f"NEOLITHIC, {s['label']} (T/R updates)"] = loss_at(f"{s['name']}-neo", NEO, T // R)
    results.data["training_loss"] = losses
    first = next(iter(results.panels["psgd"].runs.values()))["summary"]
    results.data["dataset"] = "MNIST (28x28)" if first.get("dataset_side") == 28 else "scikit-learn digits (8x8)"
    results.data["table"] = table
    results.data["train"] = train
    results.data["d"] = int(first["params"]["problem"]["d"]) if "problem" in first.get("params", {}) else None


# ----------------------------------------------------------------------------- claims
def check(results) -> list[Claim]:
    """The claims per setting, on medians over seeds of the test accuracy (see ``neolithic-images.toml``)."""
    pp = float(results.params["on_par_pp"])
    table = results.data["table"]
    claims = []
    for setting in table:
        row = table[setting]
        held, diff = on_par(row[NEO]["median"], row[PSGD]["median"], pp)
        why = "" if math.isfinite(diff) else "a median accuracy is not a finite number (no seed measured)"
        paper = PAPER[setting][NEO][0] - PAPER[setting][PSGD][0]
        claims.append(Claim(
            f"{setting}: NEOLITHIC's test accuracy is on par with uncompressed P-SGD (at most {pp:g} point below; "
            "medians over seeds)",
            held and not why, {"NEOLITHIC": _pm(row[NEO]), "P-SGD": _pm(row[PSGD]),
                               "difference of the medians (points)": round(diff, 2) if not why else "nan",
                               "paper's difference (ResNet-18, means)": round(paper, 2)},
            "" if held or why else f"NEOLITHIC is {-diff:.2f} points below P-SGD: with R = 2 it makes T/R model updates "
                                   "on twice larger (accumulated) batches at the same learning rate, so at this short "
                                   "budget it has taken half as many steps" + _loss_note(results, setting) + ".",
            why))
    for setting in ("top-k 5%", "top-k 1%"):
        if setting not in table:
            continue
        row = table[setting]
        medians = {m: v["median"] for m, v in row.items()}
        why = _nan_reason(medians)
        if EF21 in medians:
            held, rank = least_accurate(medians, EF21) if not why else (False, 0)
            claims.append(Claim(
                f"{setting}: EF21-SGD is the least accurate method (medians over seeds)",
                held, {m: _pm(v) for m, v in row.items()},
                "" if held or why else f"EF21-SGD ranks {rank} of {len(medians)}: on this small, smooth problem the "
                                       "top-k error of the EF21 estimator (which compresses the change of the "
                                       "stochastic gradient, noise included) does not hurt as much as on CIFAR-10 "
                                       "ResNets.", why))
        compressed = {m: (v["median"], v["std"]) for m, v in row.items() if m != PSGD}
        seeds = min(len(v["values"]) for v in row.values())
        why = why or ("" if seeds >= 2 else f"{seeds} seed: a standard deviation over seeds needs two or more")
        why = why or ("" if len(compressed) >= 2 else "NEOLITHIC is the only compressed method: nothing to compare")
        held, best, gap = best_or_within_std(compressed, NEO)
        held = held and not why
        claims.append(Claim(
            f"{setting}: NEOLITHIC is the most accurate compressed method, or within one std (over seeds) of it "
            "(medians over seeds)",
            held, {"NEOLITHIC": _pm(row[NEO]), "most accurate": best,
                   "gap of the medians (points)": round(gap, 2) if math.isfinite(gap) else "nan",
                   "std over seeds, NEOLITHIC / most accurate": f"{row[NEO]['std']:.2f} / {row[best]['std']:.2f}"},
            "" if held or why else f"{best} is {gap:.2f} points above NEOLITHIC, more than one std; NEOLITHIC's R = 2 "
                                   "halves its number of updates at a fixed learning rate.", why))
    q = next((s for s in table if "bit" in s), None)
    if q is not None and QSGD in table[q]:
        row = table[q]
        medians = {m: v["median"] for m, v in row.items()}
        why = _nan_reason(medians)
        held, rank = least_accurate(medians, QSGD) if not why else (False, 0)
        claims.append(Claim(
            f"{q}: QSGD (no error feedback) is the least accurate method (medians over seeds)",
            held, {m: _pm(v) for m, v in row.items()},
            "" if held or why else f"QSGD ranks {rank} of {len(row)}: with a bucketed 4-bit quantizer (ω = 0.65) the "
                                   "unbiased noise is small next to the minibatch noise, so QSGD loses little here.",
            why))
    return claims


def _nan_reason(medians: dict[str, float]) -> str:
    bad = [m for m, v in medians.items() if not math.isfinite(v)]
    return f"the median accuracy of {', '.join(bad)} is not a finite number (no seed measured)" if bad else ""


def _loss_note(results, setting: str) -> str:
    losses = results.data.get("training_loss") or {}
    keys = list(losses)
    neo = losses.get(f"NEOLITHIC, {setting} (T/R updates)")
    if len(keys) < 2 or neo is None or any(losses[k] is None for k in keys[:2]):
        return ""
    return (f" (training loss: NEOLITHIC {neo:.3g} after its T/R updates, P-SGD {losses[keys[1]]:.3g} "
            f"after as many updates and {losses[keys[0]]:.3g} after T: NEOLITHIC tracks P-SGD per update, and the "
            "budget, not the compression, limits it; the paper trains to convergence, where this gap closes)")


def _pm(v: dict[str, Any]) -> str:
    """``median [min–max]`` over seeds (in %), or the paper's ``mean ± std``."""
    if "median" not in v:
        return f"{v['mean']:.2f} ± {v['std']:.2f}"
    if len(v.get("values", ())) <= 1:
        return f"{v['median']:.2f}"
    return f"{v['median']:.2f} [{v['min']:.2f}–{v['max']:.2f}]"


# ----------------------------------------------------------------------------- figure and report
def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from commpress.reproductions._figure import finish_figure

    table = results.data["table"]
    order = [PSGD, QSGD, MEM, DS, EF21, NEO]
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
    for ax, (source, get) in zip(axes, (
            (f"ours, SCALED DOWN: CNN (d = {results.data.get('d') or '?'}) on {results.data['dataset']}, 8 workers;\n"
             "bars: median over seeds, whiskers: min–max",
             lambda s, m: _bar(table[s][m]) if m in table[s] else None),
            ("paper: CIFAR-10, ResNet-18, 8 workers (talk, Tables 1-2);\nbars: mean, whiskers: ± std",
             lambda s, m: (PAPER[s][m][0], PAPER[s][m][1], PAPER[s][m][1]) if m in PAPER.get(s, {}) else None))):
        lows = []
        for k, setting in enumerate(table):
            present = [m for m in order if get(setting, m) is not None]
            width = 0.8 / max(len(present), 1)
            for j, m in enumerate(present):
                centre, below, above = get(setting, m)
                lows.append(centre - below)
                ax.bar(k - 0.4 + (j + 0.5) * width, centre, width * 0.92, yerr=[[below], [above]], capsize=2,
                       color=cmap(order.index(m)), label=m)
        ax.set_xticks(range(len(table)))
        ax.set_xticklabels(list(table))
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(max(0.0, min(lows) - 3.0), 100.0)
        ax.set_title(source, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        ax.legend(seen.values(), seen.keys(), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09),
                  ncol=len(seen), frameon=False)
    return finish_figure(fig, results, path, f"{results.name}: test accuracy over {len(results.params['seeds'])} seeds "
                                             "(left: scaled-down reproduction, median and min–max; right: paper, "
                                             "mean ± std)")


def _bar(v: dict[str, Any]) -> tuple[float, float, float]:
    """(median, median − min, max − median) of one method's accuracies over seeds."""
    return v["median"], v["median"] - v["min"], v["max"] - v["median"]


def report_extra(results) -> str:
    table, train = results.data["table"], results.data["train"]
    seeds = len(results.params["seeds"])
    lines = ["## Test accuracy beside the paper's table", "",
             f"**Scaled down:** a small CNN on {results.data['dataset']} with 8 simulated workers on a CPU; the paper "
             "trains ResNets on CIFAR-10 on 8 GPUs. Only the ordering of methods is comparable, not the numbers. "
             f"Ours: test accuracy (%) of the last iterate on the held-out images, median [min–max] over {seeds} seeds "
             "(the verdicts read the medians; 'within one std' uses the sample std over the seeds, as the paper's "
             "± does). Paper: the talk's Tables 1-2 (mean ± std), copied from the seed text.", "",
             "| setting | method | ours (MNIST CNN) | ours, training | paper ResNet-18 | paper ResNet-20 |",
             "|---|---|---|---|---|---|"]
    for setting, row in table.items():
        for m, v in row.items():
            p = PAPER.get(setting, {}).get(m)
            paper18 = f"{p[0]:g} ± {p[1]:g}" if p else "–"
            paper20 = f"{p[2]:g} ± {p[3]:g}" if p else "–"
            lines.append(f"| {setting} | {m} | {_pm(v)} | {_pm(train[setting][m])} | {paper18} | {paper20} |")
    lines += ["", "P-SGD sends no compression and is the same run in every setting (the paper's Table 1 lists it "
              "once for both ratios).", ""]
    losses = results.data.get("training_loss") or {}
    if losses:
        lines += ["Training loss f(x) (median over seeds), to compare at equal numbers of model updates "
                  f"(T = {results.params['rounds']} rounds, R = {results.params['R']}):", "",
                  "| run | training loss |", "|---|---|"]
        lines += [f"| {k} | {'–' if v is None else format(v, '.4g')} |" for k, v in losses.items()]
        lines.append("")
    return "\n".join(lines)


__all__ = ["PAPER", "best_or_within_std", "check", "compute", "figure", "image_runner", "least_accurate", "on_par",
           "report_extra", "sweep_configs"]
