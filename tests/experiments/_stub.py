"""A fast, deterministic stand-in for the simulator (importable by spawned workers).

Curve of a run: ||grad f||^2 = (1 + seed/100) * rate^t with rate = 1/(1 + multiplier) for
multipliers up to 4 and growth (divergence) above; bits_up = (t + 1) * per_round with per_round
by compressor (cq 100, iq 300, none 3200). So with a target every method's best multiplier is 4,
and CQ < IQ < GD in bits to the target.
"""

from __future__ import annotations

from commpress.experiments.runner import RunOutput

PER_ROUND = {"cq": 100.0, "iq": 300.0, None: 3200.0}


def stub_runner(spec) -> RunOutput:
    mult = spec.stepsize_multiplier
    rate = 1.0 / (1.0 + mult) if mult <= 4 else 1.5
    per_round = PER_ROUND[spec.compressor["name"] if spec.compressor else None]
    g = 1.0 + spec.seed / 100.0
    cols = {k: [] for k in ("iteration", "bits_up", "bits_down", "grad_norm_sq", "loss", "wall_time", "dist_sq")}
    status = "max_iterations"
    for t in range(spec.iterations + 1):
        if t % spec.record_every == 0 or t == spec.iterations:
            cols["iteration"].append(t)
            cols["bits_up"].append((t + 1) * per_round)
            cols["bits_down"].append(t * 32.0)
            cols["grad_norm_sq"].append(g)
            cols["loss"].append(-1.0 + g / 2)
            cols["wall_time"].append(t * 1e-3)
            cols["dist_sq"].append(g * 4)
            if spec.target is not None and g <= spec.target:
                status = "target_reached"
                break
        g *= rate
    return RunOutput(cols, {"status": status, "stepsize": 0.1 * mult, "f_star": -1.0, "params": {"stub": True}})


def failing_runner(spec) -> RunOutput:
    if spec.stepsize_multiplier == 2.0:
        raise RuntimeError("stub failure")
    return stub_runner(spec)
