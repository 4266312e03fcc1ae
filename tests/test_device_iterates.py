"""One seed, every device: the same iterates for MARINA, DIANA and EF21 (issue 12, ``device=`` everywhere).

Parametrised over the devices present: ``"cpu"`` everywhere (CI), ``"cuda"`` where a GPU is
visible. A problem made on the device (``cp.problems.make(..., device=)``) or moved there by
``cp.simulate(..., device=)`` gives the CPU reference's iterates: bit for bit on the CPU, and
within a tight tolerance on CUDA (the randomness and the payload bytes are device-independent,
only the device's rounding of reductions differs). The CPU-only tests check the plumbing: the
config's ``[run] device``, the CLI's ``--device``, ``Job.device`` and the one-line errors.
"""

from __future__ import annotations

import json

import pytest
import torch

import commpress as cp
from commpress._device import rank_device, resolve_device
from commpress.errors import ConfigError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
PROBLEMS = {
    "logreg": dict(n_clients=5, dim=12, samples_per_client=8, l2=0.1, seed=1),
    "quadratic": dict(n_clients=5, dim=12, noise_scale=0.2, reg=0.1, seed=2),
}
RUNS = [("marina", "cq"), ("diana", "randk"), ("ef21", "topk")]
#: MARINA's theoretical p is 1 at these sizes (a CQ message is not cheaper enough): force compressed rounds.
PARAMS = {"marina": {"p": 0.3}}
ITERATIONS = 15


def _run(problem, alg: str, comp: str, seed: int = 4, **kw):
    return cp.simulate(problem, alg, compressor=comp, iterations=ITERATIONS, seed=seed, **PARAMS.get(alg, {}), **kw)


def assert_same_iterates(here, ref, device: str) -> None:
    """``here`` (run on ``device``) against the CPU reference ``ref``: exact on the CPU, else within
    1e-9 relative (a few hundred float64 roundings of reductions over 5 clients and 12 coordinates)."""
    exact = device == "cpu"
    tol = dict(rtol=0.0, atol=0.0) if exact else dict(rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(here.x.cpu(), ref.x, **tol)
    torch.testing.assert_close(here.grad_norm_sq, ref.grad_norm_sq, **tol)
    assert torch.equal(here.bits_up, ref.bits_up) and torch.equal(here.bits_down, ref.bits_down)


@pytest.fixture(scope="module")
def references():
    """The CPU runs every device is compared with (built once)."""
    out = {}
    for pname, params in PROBLEMS.items():
        problem = cp.problems.make(pname, **params)
        for alg, comp in RUNS:
            out[pname, alg, comp] = _run(problem, alg, comp)
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pname", list(PROBLEMS))
@pytest.mark.parametrize("alg,comp", RUNS)
def test_same_iterates_on_every_device(references, device, pname, alg, comp):
    ref = references[pname, alg, comp]
    problem = cp.problems.make(pname, device=device, **PROBLEMS[pname])
    assert problem.device.type == device
    here = _run(problem, alg, comp)
    assert here.x.device.type == device and here.params["device"].startswith(device)
    assert here.status == ref.status and here.stepsize == ref.stepsize  # constants computed on the CPU
    assert_same_iterates(here, ref, device)
    # moved by the simulator instead: the same run; the caller's problem stays where it was
    cpu_problem = cp.problems.make(pname, **PROBLEMS[pname])
    moved = _run(cpu_problem, alg, comp, device=device)
    assert moved.x.device.type == device and cpu_problem.device.type == "cpu"
    assert_same_iterates(moved, ref, device)


@pytest.mark.parametrize("device", DEVICES)
def test_another_seed_is_told_apart(references, device):
    """Negative control: the comparison has power; a run with another seed fails it."""
    ref = references["logreg", "marina", "cq"]
    other = _run(cp.problems.make("logreg", device=device, **PROBLEMS["logreg"]), "marina", "cq", seed=5)
    with pytest.raises(AssertionError):
        assert_same_iterates(other, ref, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pname", ["logreg", "quadratic", "least_squares", "nonconvex_logreg"])
def test_oracles_answer_on_the_problems_device(device, pname):
    params = dict(n_clients=4, dim=6, seed=3)
    ref = cp.problems.make(pname, **params)
    here = cp.problems.make(pname, device=device, **params)
    x = ref.x0() + 0.25
    tol = dict(rtol=0.0, atol=0.0) if device == "cpu" else dict(rtol=1e-12, atol=1e-14)
    rows = torch.tensor([3, 1])
    for name, call in {
        "x0": lambda P: P.x0(),
        "client_grads": lambda P: P.client_grads(x),  # a CPU point is moved to the problem's device
        "subset": lambda P: P.client_grads(x, clients=rows),
        "losses": lambda P: P.client_losses(x.to(P.device)),
        "hvp": lambda P: P.hessian_vector_products(x, torch.ones(6, dtype=torch.float64)),
    }.items():
        got = call(here)
        assert got.device.type == device, name
        torch.testing.assert_close(got.cpu(), call(ref), **tol, msg=name)
    if ref.num_samples() is not None:  # finite sums: seeded minibatches drawn on the CPU, moved
        gen = lambda: torch.Generator().manual_seed(9)  # noqa: E731
        got = here.minibatch_grads(x, gen(), 3)
        assert got.device.type == device
        torch.testing.assert_close(got.cpu(), ref.minibatch_grads(x, gen(), 3), **tol)
    opt = ref.optimum()
    if opt is not None:
        f_here, x_here = here.optimum()
        assert f_here == opt[0] and x_here.device.type == device
        assert torch.equal(x_here.cpu(), opt[1])  # computed on the CPU, then moved
    assert here.smoothness().L_minus == ref.smoothness().L_minus


def test_to_returns_self_or_a_moved_copy():
    P = cp.problems.make("quadratic", n_clients=3, dim=5)
    assert P.device == torch.device("cpu")
    assert P.to("cpu") is P and P.to(None) is P and cp.problems.make(P, device="cpu") is P
    mlp = cp.problems.make("mlp", n_clients=3, hidden=(4,), device="cpu")
    assert mlp.x0().device.type == "cpu" and mlp.client_grads(mlp.x0()).device.type == "cpu"


def test_an_unknown_device_is_one_configerror_line():
    for bad in ("gpu", "cuda:x", ""):
        with pytest.raises(ConfigError, match="unknown device") as err:
            resolve_device(bad, "simulate")
        assert "\n" not in str(err.value) and 'device="cpu"' in str(err.value)
    with pytest.raises(ConfigError, match="not supported"):
        resolve_device("meta")
    with pytest.raises(ConfigError, match="must be a string"):
        resolve_device(0)
    P = cp.problems.make("quadratic", n_clients=3, dim=5)
    with pytest.raises(ConfigError, match="simulate: unknown device 'gpu'"):
        cp.simulate(P, "gd", iterations=2, device="gpu")
    with pytest.raises(ConfigError, match="unknown device"):
        cp.problems.make("quadratic", n_clients=3, dim=5, device="gpu")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(None) is None


def test_cuda_without_a_visible_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for spec in ("cuda", "cuda:1", torch.device("cuda")):
        with pytest.raises(ConfigError) as err:
            resolve_device(spec, "run.device")
        msg = str(err.value)
        assert "\n" not in msg and "no CUDA device is visible" in msg and 'pass device="cpu"' in msg
        assert f"'{spec}'" in msg  # what was asked
    P = cp.problems.make("quadratic", n_clients=3, dim=5)
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        cp.simulate(P, "gd", iterations=2, device="cuda")
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        P.to("cuda")


def test_torchrun_ranks_take_their_local_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device("cuda") == torch.device("cuda", 1)
    assert rank_device("cuda:0") == torch.device("cuda", 0)  # an explicit index is kept
    assert rank_device("cpu") == torch.device("cpu") and rank_device(None) is None
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(ConfigError, match="only 2 CUDA device"):
        rank_device("cuda")


def _config(tmp_path, device_line: str):
    path = tmp_path / "dev.toml"
    path.write_text('[problem]\nname = "quadratic"\nn_clients = 3\ndim = 6\n\n[run]\nalgorithm = "marina"\n'
                    f'compressor = "cq"\niterations = 4\n{device_line}\n')
    return path


def test_config_and_cli_take_a_device(tmp_path, capsys):
    from commpress.cli import main
    from commpress.experiments.config import load_config, resolved_dict

    cfg = load_config(_config(tmp_path, 'device = "cpu"'))
    assert cfg.run.device == "cpu" and resolved_dict(cfg)["run"]["device"] == "cpu"
    assert load_config(_config(tmp_path, "")).run.device is None
    with pytest.raises(ConfigError, match="run.device: unknown device 'gpu'"):
        load_config(_config(tmp_path, 'device = "gpu"'))

    # the run records where it ran; the device is not part of the run id
    rc = main(["run", str(_config(tmp_path, 'device = "cpu"')), "--out", str(tmp_path / "a"), "--quiet", "--no-plots"])
    assert rc == 0
    rc = main(["run", str(_config(tmp_path, "")), "--out", str(tmp_path / "b"), "--quiet", "--no-plots",
               "--device", "cpu"])
    assert rc == 0
    (run_a,) = (tmp_path / "a" / "runs").iterdir()
    (run_b,) = (tmp_path / "b" / "runs").iterdir()
    assert run_a.name == run_b.name
    assert json.loads((run_b / "summary.json").read_text())["params"]["device"] == "cpu"
    capsys.readouterr()

    rc = main(["run", str(_config(tmp_path, "")), "--out", str(tmp_path / "c"), "--quiet", "--device", "tpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "--device: unknown device 'tpu'" in err[0]
    assert not (tmp_path / "c").exists()  # reported before any work


def test_the_runner_passes_its_device_to_every_run(tmp_path, monkeypatch):
    from commpress.experiments import runner

    seen = []
    real = runner.simulate_run

    def spy(spec, device=None):
        seen.append(device)
        return real(spec, device=device)

    monkeypatch.setattr(runner, "simulate_run", spy)
    runner.run(_config(tmp_path, ""), out=tmp_path / "r", quiet=True, plots=False, device="cpu")
    assert seen == ["cpu"]
    with pytest.raises(ConfigError, match="device: unknown device"):
        runner.run(_config(tmp_path, ""), out=tmp_path / "s", quiet=True, plots=False, device="gpu")


def test_job_device_is_plumbed_to_every_rank():
    from commpress.distributed import Job, launch

    problem = {"name": "quadratic", "params": {"n_clients": 4, "dim": 8, "seed": 1}}
    job = Job(problem=problem, algorithm="marina", compressor="cq", iterations=6, seed=2, device="cpu")
    assert Job.from_dict(json.loads(job.to_json())).device == "cpu"
    plain = Job(problem=problem, algorithm="marina", compressor="cq", iterations=6, seed=2)
    assert plain.device is None and plain.fingerprint() == Job(**{**plain.to_dict(), "device": None}).fingerprint()
    with pytest.raises(ConfigError, match="device as a string"):
        Job(problem=problem, algorithm="gd", device=torch.device("cpu"))
    (run,) = launch([job], processes=2, start_method="fork", timeout=60)
    ref = cp.simulate(cp.problems.make("quadratic", **problem["params"]), "marina", compressor="cq", iterations=6,
                      seed=2)
    assert run.history.params["device"] == "cpu"
    assert torch.equal(run.history.x, ref.x)
