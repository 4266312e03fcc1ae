"""commpress.simulate: stopping rules, statuses, the recorded curve and its parameters."""

from __future__ import annotations

import json
import math

import pytest
import torch

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.simulate import History, simulate

from tests.algorithms._toy import toy


def test_history_fields_and_bits_match_the_dense_wire():
    problem = toy()
    h = simulate(problem, "gd", iterations=20, record_every=3)
    assert isinstance(h, History) and h.status == "max_iterations"
    assert h.iterations.tolist() == [0, 3, 6, 9, 12, 15, 18, 20]
    n_rec = len(h.iterations)
    for field in (h.grad_norm_sq, h.loss, h.bits_up, h.bits_down, h.wall_time, h.dist_sq):
        assert field.shape == (n_rec,)
    # GD: 32 d bits per client per round, both directions; nothing at iteration 0
    assert torch.equal(h.bits_up, (32 * problem.d * h.iterations).double())
    assert torch.equal(h.bits_down, h.bits_up)
    assert torch.equal(h.bits_up_per_client, torch.full((problem.n,), 20 * 32 * problem.d))
    assert bool((h.wall_time[1:] >= h.wall_time[:-1]).all())
    # the metrics are f and ||grad f||^2 at the recorded points; x is the final point
    assert h.grad_norm_sq[-1].item() == pytest.approx(float(problem.grad(h.x).pow(2).sum()), rel=1e-12)
    assert h.loss[-1].item() == pytest.approx(problem.loss(h.x), rel=1e-12)
    f_star, x_star = problem.optimum()
    assert h.f_star == pytest.approx(f_star)
    assert h.dist_sq[-1].item() == pytest.approx(float((h.x - x_star).pow(2).sum()), rel=1e-12)
    assert h.stepsize == pytest.approx(1.0 / problem.smoothness().L_minus)
    json.dumps(h.to_dict())  # storable


def test_params_record_everything_used():
    problem = toy()
    h = simulate(problem, "marina", compressor="cq", iterations=3, seed=5, p=0.25, stepsize_multiplier=2.0)
    p = h.params
    assert p["algorithm"] == "marina" and p["p"] == 0.25 and p["seed"] == 5
    assert p["compressor"] == {"name": "cq", **cp.compressors.make("cq").params()}
    assert p["stepsize_source"] == "theory" and p["stepsize_multiplier"] == 2.0
    assert p["problem"]["name"] == problem.name
    alone = cp.algorithms.make("marina", problem, compressor="cq", p=0.25)
    assert h.stepsize == pytest.approx(2.0 * alone.gamma)
    h2 = simulate(problem, "marina", compressor="cq", iterations=3, p=0.25, stepsize=0.01, stepsize_multiplier=3.0)
    assert h2.stepsize == pytest.approx(0.03) and h2.params["stepsize_source"] == "given"


def test_target_stops_the_run():
    problem = toy()
    g0 = float(problem.grad(problem.x0()).pow(2).sum())
    h = simulate(problem, "gd", iterations=10_000, target=1e-10 * g0)
    assert h.status == "target_reached"
    assert h.grad_norm_sq[-1] <= 1e-10 * g0 < h.grad_norm_sq[-2]
    assert h.iterations[-1] < 10_000


def test_bits_budget_stops_the_run_once_reached():
    problem = toy()
    budget = 10 * 32 * problem.d + 1  # crossed during round 11
    h = simulate(problem, "gd", iterations=1000, bits_budget=budget, record_every=4)
    assert h.status == "budget_exhausted"
    assert h.iterations[-1] == 11 and h.bits_up[-1] >= budget > h.bits_up[-2]


def test_diverging_runs_stop_with_status_instead_of_raising():
    problem = toy()
    L = problem.smoothness().L_minus
    h = simulate(problem, "gd", iterations=500, stepsize=5.0 / L)  # blows up geometrically
    assert h.status == "diverged" and h.iterations[-1] < 500
    h = simulate(problem, "marina", compressor="cq", p=0.5, iterations=50, stepsize=1e300)  # overflow to inf
    assert h.status == "diverged"
    assert bool(torch.isfinite(h.x).all())  # the last finite point
    h = simulate(problem, "gd", iterations=30, stepsize=0.5 / L)  # negative control
    assert h.status == "max_iterations"


def test_a_built_algorithm_can_be_simulated():
    problem = toy()
    alg = cp.algorithms.make("diana", problem, compressor="iq", gamma=0.05)
    h = simulate(problem, alg, iterations=5)
    assert h.stepsize == 0.05 and len(h.iterations) == 6
    with pytest.raises(cp.ConfigError):
        simulate(problem, alg, compressor="cq")
    with pytest.raises(cp.ConfigError):
        simulate(toy(seed=1), alg)


def test_missing_constants_and_bad_settings_are_rejected():
    problem = toy()
    no_omega = cp.compressors.make("iq", range="minmax")  # no scale-invariant omega
    with pytest.raises(cp.ConfigError, match="alpha"):
        simulate(problem, "diana", compressor=no_omega)
    h = simulate(problem, "diana", compressor=no_omega, alpha=0.5, stepsize=0.01, iterations=2)  # given: fine
    assert h.status == "max_iterations"
    with pytest.raises(cp.ConfigError, match="iterations"):
        simulate(problem, "gd", iterations=-1)
    with pytest.raises(cp.ConfigError, match="record_every"):
        simulate(problem, "gd", record_every=0)
    with pytest.raises(cp.ConfigError, match="stepsize_multiplier"):
        simulate(problem, "gd", stepsize_multiplier=0)
    with pytest.raises(cp.ConfigError, match="unknown algorithm"):
        simulate(problem, "marinna")
    with pytest.raises(cp.ConfigError, match="no parameter"):
        simulate(problem, "marina", compressor="cq", q=0.3)


def test_marina_known_gradient_is_the_exact_gradient():
    problem = toy()
    alg = cp.algorithms.make("marina", problem, compressor="cq", p=0.3, gamma=0.05)
    state = alg.init()
    for _ in range(3):
        state = alg.step(state)
    assert torch.equal(alg.known_gradient(state), problem.grad(state.x))
    gd = cp.algorithms.make("gd", problem, gamma=0.05)
    assert gd.known_gradient(gd.init()) is None


# ----------------------------------------------------------------------------- callback and progress bar
def _fields(h: History) -> dict[str, torch.Tensor]:
    """Every recorded column of a history (wall_time excluded: timing differs between runs)."""
    out = {"iteration": h.iterations, "grad_norm_sq": h.grad_norm_sq, "loss": h.loss, "bits_up": h.bits_up,
           "bits_down": h.bits_down}
    if h.dist_sq is not None:
        out["dist_sq"] = h.dist_sq
    return out


def _same_run(a: History, b: History) -> None:
    assert a.status == b.status and torch.equal(a.x, b.x)
    for (name, u), v in zip(_fields(a).items(), _fields(b).values()):
        assert torch.equal(u, v), name


def test_the_callback_sees_every_recorded_round_in_order():
    problem = toy()
    seen = []

    def watch(t, state, record):
        assert isinstance(record, dict)
        seen.append((t, state, dict(record)))
        record["loss"] = -1.0  # a copy: changing it changes nothing

    h = simulate(problem, "marina", compressor="cq", iterations=20, record_every=3, seed=2, callback=watch)
    assert [t for t, _, _ in seen] == h.iterations.tolist() == [0, 3, 6, 9, 12, 15, 18, 20]
    for k, (t, state, record) in enumerate(seen):
        assert set(record) == {"iteration", "grad_norm_sq", "loss", "bits_up", "bits_down", "wall_time", "dist_sq"}
        assert record["iteration"] == t and record["wall_time"] == h.wall_time[k].item()
        for name, column in _fields(h).items():
            assert record[name] == column[k].item(), (t, name)
        assert state.t == t  # MARINA's state after round t
    assert torch.equal(seen[-1][1].x, h.x)  # the state after the last round
    _same_run(h, simulate(problem, "marina", compressor="cq", iterations=20, record_every=3, seed=2))


@pytest.mark.parametrize("k", [0, 1, 7])
def test_returning_true_stops_after_that_round(k):
    problem = toy()
    calls = []

    def stop_at_k(t, state, record):
        calls.append(t)
        return t >= k

    h = simulate(problem, "marina", compressor="cq", iterations=50, seed=1, callback=stop_at_k)
    assert h.status == "stopped_by_callback" and h.n_iterations == k
    assert h.iterations.tolist() == list(range(k + 1)) and len(h.grad_norm_sq) == k + 1 and calls == list(range(k + 1))
    full = simulate(problem, "marina", compressor="cq", iterations=50, seed=1)
    for name, column in _fields(h).items():  # the same run, cut at round k
        assert torch.equal(column, _fields(full)[name][:k + 1]), name
    assert h.bits_up_per_client.double().mean().item() == pytest.approx(h.bits_up[-1].item())
    # None and False continue; a stop rule of the run takes precedence over the request
    assert simulate(problem, "gd", iterations=4, callback=lambda t, s, r: None).status == "max_iterations"
    assert simulate(problem, "gd", iterations=4, callback=lambda t, s, r: False).status == "max_iterations"
    assert simulate(problem, "gd", iterations=4, callback=lambda t, s, r: t == 4).status == "max_iterations"
    g0 = float(problem.grad(problem.x0()).pow(2).sum())
    h = simulate(problem, "gd", iterations=10_000, target=1e-6 * g0, callback=lambda t, s, r: r["grad_norm_sq"] <= 1e-6 * g0)
    assert h.status == "target_reached"


def test_a_bad_callback_is_rejected_and_its_errors_propagate_unchanged():
    problem = toy()
    with pytest.raises(cp.InputTypeError, match=r"callback=None or a function callback\(round, state, record\).*got 3 \(int\)"):
        simulate(problem, "gd", iterations=2, callback=3)
    with pytest.raises(cp.ConfigError, match="progress=True or False; got progress='yes'"):
        simulate(problem, "gd", iterations=2, progress="yes")

    class Boom(Exception):
        pass

    def explode(t, state, record):
        if t == 2:
            raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        simulate(problem, "marina", compressor="cq", iterations=5, callback=explode, progress=True)


def test_progress_bar_goes_to_stderr_and_changes_nothing(capsys):
    problem = toy()
    quiet = simulate(problem, "marina", compressor="cq", iterations=12, record_every=5, seed=3)
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""  # off by default
    shown = simulate(problem, "marina", compressor="cq", iterations=12, record_every=5, seed=3, progress=True)
    out = capsys.readouterr()
    assert out.out == ""
    assert "simulate marina" in out.err and "12/12" in out.err and "round" in out.err
    assert f"bits_up/client={quiet.bits_up[-1].item():.4g}" in out.err and "|grad f|^2=" in out.err
    _same_run(quiet, shown)
    stopped = simulate(problem, "gd", iterations=30, progress=True, callback=lambda t, s, r: t == 4)
    assert stopped.status == "stopped_by_callback" and "4/30" in capsys.readouterr().err


def test_simulate_takes_a_problem_instance_and_says_how_to_get_one():
    with pytest.raises(cp.InputTypeError, match=r"got the name 'logreg'. Build it first: cp.problems.make\('logreg', ...\)"):
        simulate("logreg", "gd")
    with pytest.raises(cp.InputTypeError, match=r"got dict. Write your own as a subclass of commpress.problems.Problem"):
        simulate({"A": 1}, "gd")
