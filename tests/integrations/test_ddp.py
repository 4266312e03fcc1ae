"""DDP communication hooks: exact wrt the compressor, byte-honest, resumable.

One spawn of 2 gloo ranks (file:// store in tmp) runs every distributed scenario
(``_ddp_worker.py``); each test below checks one scenario against a reference computed here,
with the simulator's full-batch ``apply`` (all clients in one call) and the same round seeds.
"""

from __future__ import annotations

import io

import pytest
import torch

import commpress as cp
from commpress import derive_seed
from commpress.errors import ConfigError, DistributedError, InputTypeError
from commpress.integrations import ddp as cpddp
from tests.integrations import _ddp_worker as worker
from tests.integrations._spawn import spawn

WARMUP = 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    spawn(worker.worker, tmp, nprocs=worker.WORLD)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(worker.WORLD)]


# ------------------------------------------------------------------ real DDP
def test_identity_hook_equals_default_allreduce(runs):
    for r in range(worker.WORLD):
        base, hook = runs[r]["identity"]["base"], runs[r]["identity"]["hook"]
        assert len(hook) == worker.STEPS and runs[r]["identity"]["steps"] == worker.STEPS
        for t in range(worker.STEPS):
            torch.testing.assert_close(hook[t], base[t], rtol=1e-6, atol=1e-7)
        # the mean, not the local gradient: the two ranks agree although their data differ
        torch.testing.assert_close(hook[-1], runs[1 - r]["identity"]["hook"][-1], rtol=0, atol=0)
    n_params = base[0].numel()
    assert runs[0]["identity"]["bytes"] == 4 * n_params  # identity: d float32 per step


def _pairs(runs, key):
    calls = [runs[r][key]["calls"] for r in range(worker.WORLD)]
    assert len(calls[0]) == len(calls[1]) > 0
    for a, b in zip(*calls):
        assert (a["step"], a["index"]) == (b["step"], b["index"])
    return list(zip(*calls))


@pytest.mark.parametrize("key,name", [("exact_cq", "cq"), ("exact_identity", "identity")])
def test_hook_output_is_the_mean_of_the_decoded_messages(runs, key, name):
    C = cp.compressors.make(name)
    pairs = _pairs(runs, key)
    assert len({c[0]["index"] for c in pairs}) > 1, "the scenario should exercise several buckets"
    assert {c[0]["step"] for c in pairs} == set(range(worker.STEPS))
    wrong_seed_matches = []
    for call in pairs:
        X = torch.stack([c["local"] for c in call])
        step, index = call[0]["step"], call[0]["index"]
        if step < WARMUP:
            expected = X.mean(dim=0)
        else:
            expected = C.apply(X, derive_seed(7, step, index))[0].mean(dim=0)
            other = C.apply(X, derive_seed(7, step + 1, index))[0].mean(dim=0)
            wrong_seed_matches.append(torch.allclose(other, expected))
        for c in call:
            torch.testing.assert_close(c["out"], expected, rtol=1e-6, atol=1e-7)
    if name == "cq":  # negative control: another round's seed gives another average
        assert not all(wrong_seed_matches)


@pytest.mark.parametrize("key,name", [("exact_cq", "cq"), ("exact_identity", "identity")])
def test_bytes_counted_are_the_payload_lengths(runs, key, name):
    C = cp.compressors.make(name)
    pairs = _pairs(runs, key)
    for r in range(worker.WORLD):
        for t in range(worker.STEPS):
            calls = [c for c in pairs if c[0]["step"] == t]
            if t < WARMUP:
                payload = wire = sum(4 * c[r]["local"].numel() for c in calls)
            else:
                payload, wire = 0, 0
                for call in calls:
                    seed = derive_seed(7, t, call[0]["index"])
                    lengths = [len(C.encode(c["local"][None], seed, clients=[q], n=2)[0]) for q, c in enumerate(call)]
                    payload += lengths[r]
                    # summable: the dense all-reduce input (+ the failure flag entry);
                    # otherwise the length word + the padded bytes
                    wire += 4 * (call[r]["local"].numel() + 1) if C.summable else 8 + max(lengths)
            assert runs[r][key]["per_step"][t] == (payload, wire), (r, t)


def test_ef_state_saves_and_resumes_identically(runs):
    for r in range(worker.WORLD):
        res = runs[r]["resume"]
        assert res["residual_norm"] > 0
        for a, b in zip(res["continued"], res["resumed"]):
            assert torch.equal(a, b)
        # negative control: without the saved residuals the run differs
        assert not all(torch.equal(a, b) for a, b in zip(res["continued"], res["no_memory"]))
        assert "bound=True" in res["repr"]


def test_unbound_state_warns_when_a_fresh_ddp_reorders_its_bucket(runs):
    """Unbound, the resumed DDP's first (pre-rebuild) layout differs: memory restarts, with a warning."""
    for r in range(worker.WORLD):
        res = runs[r]["resume"]
        assert any("changed its layout" in m and "bind" in m for m in res["unbound_warnings"])
        assert not all(torch.equal(a, b) for a, b in zip(res["continued"], res["unbound"]))


# ------------------------------------------------------------------ stateful hooks, called by hand
PLAN = [[20]] * 5 + [[20, 6]] * 2 + [[13]] * 2  # a second bucket appears, then bucket 0 shrinks


def _plan_inputs() -> list[list[torch.Tensor]]:
    return [[torch.stack([worker.fake_grad(r, t, b, d) for r in range(worker.WORLD)]) for b, d in enumerate(sizes)]
            for t, sizes in enumerate(PLAN)]


def _reference(method: str, name: str, steps: list[list[torch.Tensor]], seed: int, alpha: float = 0.5):
    """EF / EF21 / DIANA / plain averaging over both clients at once, with the simulator's apply.

    ``steps[t][b]`` is the ``(2, d)`` batch of both ranks' gradients of bucket b at step t.
    Returns the outputs ``[t][b]`` and the final memory ``{b: {"own": (2, d), "mean": (d,)}}``.
    """
    C = cp.compressors.make(name)
    memory: dict[int, dict[str, torch.Tensor]] = {}
    outs = []
    for t, buckets in enumerate(steps):
        row = []
        for b, X in enumerate(buckets):
            d = X.shape[1]
            sent_seed = derive_seed(seed, t, b)
            held = memory.get(b)
            if held is None or held["own"].shape[1] != d:
                held = memory[b] = {"own": torch.zeros_like(X), "mean": torch.zeros(d)}
            if t < WARMUP:
                out = X.mean(dim=0)
                if t == WARMUP - 1 and method in ("ef21", "diana"):
                    held["own"], held["mean"] = X.clone(), out.clone()
            elif method == "mean":
                out = C.apply(X, sent_seed)[0].mean(dim=0)
            elif method == "ef":
                P = held["own"] + X
                sent = C.apply(P, sent_seed)[0]
                held["own"] = P - sent
                out = sent.mean(dim=0)
            elif method == "ef21":
                sent = C.apply(X - held["own"], sent_seed)[0]
                held["own"] = held["own"] + sent
                held["mean"] = held["mean"] + sent.mean(dim=0)
                out = held["mean"].clone()
            else:  # diana
                sent = C.apply(X - held["own"], sent_seed)[0]
                out = held["mean"] + sent.mean(dim=0)
                held["own"] = held["own"] + alpha * sent
                held["mean"] = held["mean"] + alpha * sent.mean(dim=0)
            row.append(out)
        for b in [b for b in memory if b >= len(buckets)]:
            del memory[b]
        outs.append(row)
    return outs, memory


_MEMORY_NAMES = {"ef": ("residuals", None), "ef21": ("estimates", "averages"), "diana": ("shifts", "shift_means")}


def _check_memory(method, got_memory, memory, r, sizes):
    own_name, mean_name = _MEMORY_NAMES[method]
    own = got_memory[own_name]
    assert {i: t.numel() for i, t in own.items()} == sizes
    for i in sizes:
        torch.testing.assert_close(own[i], memory[i]["own"][r], rtol=1e-5, atol=1e-6)
        if mean_name:
            torch.testing.assert_close(got_memory[mean_name][i], memory[i]["mean"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method,name", [("ef", "iq"), ("ef21", "cq"), ("diana", "cq"), ("mean", "permk")])
def test_stateful_hooks_follow_their_update_and_survive_bucket_changes(runs, method, name):
    expected, memory = _reference(method, name, _plan_inputs(), seed=11)
    for r in range(worker.WORLD):
        got = runs[r]["stateful"][method]
        assert got["steps"] == len(PLAN)
        for t, row in enumerate(expected):
            assert len(got["outs"][t]) == len(row)
            for b, out in enumerate(row):
                torch.testing.assert_close(got["outs"][t][b], out, rtol=1e-5, atol=1e-6, msg=f"step {t} bucket {b}")
        if method != "mean":  # bucket 1 forgotten, bucket 0 resized
            _check_memory(method, got["memory"], memory, r, {0: 13})


def _canonical(flat: torch.Tensor, keys: list[tuple[int, int]]) -> torch.Tensor:
    """A bucket's entries with its parameters in model order (the order a bound state compresses in)."""
    pieces = flat.split([numel for _, numel in keys])
    return torch.cat([pieces[i] for i in sorted(range(len(keys)), key=lambda i: keys[i][0])])


def test_ef21_through_ddp_bucket_rebuild(runs):
    """Per-bucket caps: DDP starts with two buckets and merges them (reordered) at its rebuild."""
    pairs = _pairs(runs, "rebuild_ef21")
    by_step = [[call for call in pairs if call[0]["step"] == t] for t in range(worker.STEPS)]
    sizes = [[call[0]["local"].numel() for call in calls] for calls in by_step]
    assert len(sizes[0]) == 2 and all(s == [sum(sizes[0])] for s in sizes[1:])
    keys = by_step[-1][0][0]["keys"]
    assert [k for k, _ in keys] != sorted(k for k, _ in keys), "the rebuilt bucket is not in model order"
    steps = [[torch.stack([_canonical(c["local"], c["keys"]) for c in call]) for call in calls] for calls in by_step]
    expected, memory = _reference("ef21", "cq", steps, seed=7)
    for r in range(worker.WORLD):
        for t, calls in enumerate(by_step):
            for b, call in enumerate(calls):
                got = _canonical(call[r]["out"], call[r]["keys"])
                torch.testing.assert_close(got, expected[t][b], rtol=1e-5, atol=1e-6, msg=f"step {t} bucket {b}")
        _check_memory("ef21", runs[r]["rebuild_ef21"]["memory"], memory, r, {0: sum(sizes[0])})


def _reference_by_parameter(method: str, name: str, seed: int, warmup: int = WARMUP):
    """EF / EF21 with memory per parameter, each bucket compressed in model order: what a bound state does."""
    C = cp.compressors.make(name)
    sizes = worker.REGROUP_SIZES
    own: dict[int, torch.Tensor] = {}
    mean: dict[int, torch.Tensor] = {}
    outs = []
    for t, buckets in enumerate(worker.REGROUP_PLAN):
        row = []
        for b, keys in enumerate(buckets):
            ks = sorted(keys)
            X = torch.stack([torch.cat([worker.fake_grad(r, t, k, sizes[k]) for k in ks]) for r in range(worker.WORLD)])
            split = [sizes[k] for k in ks]
            E = torch.cat([own.get(k, torch.zeros(worker.WORLD, sizes[k])) for k in ks], dim=1)
            G = torch.cat([mean.get(k, torch.zeros(sizes[k])) for k in ks])
            seed_tb = derive_seed(seed, t, b)
            if t < warmup:
                out = X.mean(dim=0)
                if method == "ef21" and t == warmup - 1:
                    E, G = X.clone(), out.clone()
            elif method == "ef":
                P = E + X
                sent = C.apply(P, seed_tb)[0]
                E, out = P - sent, sent.mean(dim=0)
            else:
                sent = C.apply(X - E, seed_tb)[0]
                E, G = E + sent, G + sent.mean(dim=0)
                out = G.clone()
            for k, e, g in zip(ks, E.split(split, dim=1), G.split(split)):
                own[k], mean[k] = e, g
            row.append(out)
        outs.append(row)
    return outs


@pytest.mark.parametrize("warmup", [WARMUP, 0])
@pytest.mark.parametrize("method,name", [("ef", "iq"), ("ef21", "cq")])
def test_bound_memory_follows_parameters_when_buckets_regroup(runs, method, name, warmup):
    """warmup 0 (the default of a bound state): compressed from step 0, and the memory still follows
    the parameters through the regroupings at steps 3 and 4."""
    expected = _reference_by_parameter(method, name, seed=5, warmup=warmup)
    for r in range(worker.WORLD):
        got = runs[r]["regroup"][method if warmup == WARMUP else f"{method}_nowarm"]
        assert got["warmup"] == warmup
        for t, buckets in enumerate(worker.REGROUP_PLAN):
            for b, keys in enumerate(buckets):
                canon = _canonical(got["outs"][t][b], [(k, worker.REGROUP_SIZES[k]) for k in keys])
                torch.testing.assert_close(canon, expected[t][b], rtol=1e-5, atol=1e-6, msg=f"step {t} bucket {b}")
        assert got["layouts"] == {0: ((1, 3),), 1: ((0, 4), (2, 5))}


def test_regroup_reference_has_power(runs):
    """Negative control: a reference whose memory restarts at zero at a regrouping misses the hook's outputs."""
    got = runs[0]["regroup"]["ef_nowarm"]["outs"]
    lost = _reference_by_parameter("ef", "iq", seed=5, warmup=0)
    wrong = _reference_by_parameter("ef", "iq", seed=5, warmup=WARMUP)  # dense steps where the hook compressed
    assert not torch.allclose(got[0][0], wrong[0][0], rtol=1e-5, atol=1e-6)
    assert torch.allclose(got[0][0], lost[0][0], rtol=1e-5, atol=1e-6)


def test_unbound_state_defaults_to_two_dense_steps(runs):
    assert all(run["regroup"]["unbound_warmup"] == 2 for run in runs)
    assert cpddp.EFHookState("iq").warmup_steps is None


def test_every_registered_compressor_is_exact_through_the_hook(runs):
    names = set(runs[0]["every_compressor"])
    assert {"identity", "cq", "iq"} <= names
    for name in sorted(names):
        C = cp.compressors.make(name)
        for r in range(worker.WORLD):
            got = runs[r]["every_compressor"][name]
            payload = 0
            for t, sizes in enumerate(worker.ALL_PLAN):
                for b, d in enumerate(sizes):
                    X = torch.stack([worker.fake_grad(q, t, b, d) for q in range(worker.WORLD)])
                    seed = derive_seed(13, t, b)
                    expected = X.mean(dim=0) if t < WARMUP else C.apply(X, seed)[0].mean(dim=0)
                    torch.testing.assert_close(got["outs"][t][b], expected, rtol=1e-5, atol=1e-6,
                                               msg=f"{name}: step {t} bucket {b} rank {r}")
                    if t == len(worker.ALL_PLAN) - 1:
                        payload += len(C.encode(X[r : r + 1], seed, clients=[r], n=worker.WORLD)[0])
            assert got["payload"] == payload, name


@pytest.mark.parametrize("name", ["identity", "cq"])
def test_a_failing_rank_makes_every_rank_raise(runs, name):
    """Rank 1's gradient holds NaN: it raises its InputError, rank 0 a DistributedError (no hang).

    The errors come from the future (``wait()``): the hooks' completion callbacks raise them, and
    torch reports a callback's error as a RuntimeError that names the original class first."""
    assert runs[0]["failure"][name].startswith("RuntimeError: Got the following error when running the callback: "
                                               "DistributedError: another rank failed")
    assert "NonFiniteError: X holds NaN" in runs[1]["failure"][name]  # an InputError subclass
    for r in range(worker.WORLD):
        assert "while compressing DDP bucket 0 (10 entries) at step 2 on rank" in runs[r]["failure"][name]


def test_memory_matters_negative_control():
    """The EF reference differs from plain averaging: the stateful test above can fail."""
    ef, _ = _reference("ef", "iq", _plan_inputs(), seed=11)
    plain, _ = _reference("mean", "iq", _plan_inputs(), seed=11)
    assert not torch.allclose(ef[4][0], plain[4][0])


# ------------------------------------------------------------------ single process
def test_state_pickles_without_process_group():
    state = cpddp.EF21HookState("cq", process_group=object(), seed=5, warmup_steps=3)
    state.step = 4
    state.estimates[0] = torch.arange(3.0)
    state.averages[0] = torch.ones(3)
    state.traffic.add(10, 18)
    state.traffic.end_step()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded) is cpddp.EF21HookState and loaded.process_group is None
    assert (loaded.seed, loaded.warmup_steps, loaded.step) == (5, 3, 4)
    assert loaded.compressor.name == "cq" and loaded.compressor.params() == state.compressor.params()
    assert torch.equal(loaded.estimates[0], state.estimates[0]) and torch.equal(loaded.averages[0], state.averages[0])
    assert loaded.traffic == state.traffic
    assert "process_group" not in state.__getstate__()


def test_diana_default_alpha_is_one_over_omega_plus_one():
    state = cpddp.DianaHookState("iq")
    omega = cp.compressors.make("iq").theory(2, 50).omega
    assert state.alpha_for(2, 50) == pytest.approx(1.0 / (1.0 + omega))
    assert cpddp.DianaHookState("iq", alpha=0.25).alpha_for(2, 50) == 0.25


@pytest.mark.parametrize(
    "make_state,error,match",
    [
        (lambda: cpddp.CompressionHookState("cq", warmup_steps=-1), ConfigError, "warmup_steps"),
        (lambda: cpddp.CompressionHookState("cq", warmup_steps=1.5), ConfigError, "warmup_steps"),
        (lambda: cpddp.CompressionHookState("nope"), ConfigError, "unknown compressor"),
        (lambda: cpddp.CompressionHookState(3), InputTypeError, "compressor must be"),
        (lambda: cpddp.CompressionHookState("cq", seed=-1), ConfigError, "seed"),
        (lambda: cpddp.DianaHookState("cq", alpha=1.5), ConfigError, "alpha"),
    ],
)
def test_bad_settings_are_rejected(make_state, error, match):
    with pytest.raises(error, match=match):
        make_state()


def test_hook_checks_state_type_and_process_group():
    bucket = worker.FakeBucket(0, torch.zeros(4), last=True)
    with pytest.raises(InputTypeError, match="EF21HookState"):
        cpddp.ef21_hook(cpddp.CompressionHookState("cq"), bucket)
    with pytest.raises(DistributedError, match="init_process_group"):
        cpddp.compressed_allreduce_hook(cpddp.CompressionHookState("cq"), bucket)
