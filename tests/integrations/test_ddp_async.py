"""Asynchronous DDP hooks: the same results as the synchronous ones, pending futures, errors.

One spawn of 2 gloo ranks per scenario (``_ddp_async_worker.py``). The reference is the synchronous
implementation the hooks had before they returned pending futures, frozen in
``_ddp_sync_reference.py``: the asynchronous hooks must give the same gradients, parameters,
memories and byte counts bit for bit, for every method and for compressors of every path
(all-reduce, one all-gather of layout-sized frames, lengths first).
"""

from __future__ import annotations

import pytest
import torch

from tests.integrations import _ddp_async_worker as worker
from tests.integrations._spawn import spawn


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each scenario's results of every rank, spawned once, on first use."""
    cache: dict = {}

    def get(scenario: str) -> list:
        if scenario not in cache:
            tmp = tmp_path_factory.mktemp(f"ddp_async_{scenario}")
            spawn(worker.worker, tmp, scenario, nprocs=worker.WORLD)
            cache[scenario] = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(worker.WORLD)]
        return cache[scenario]

    return get


def _equal(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


KEYS = [f"{m}:{c}" for m in worker.METHODS for c in worker.COMPRESSORS] + [f"{m}:{c}:unused" for m, c in worker.UNUSED]


@pytest.mark.parametrize("key", KEYS)
def test_async_hooks_train_exactly_as_the_synchronous_ones(runs, key):
    for r in range(worker.WORLD):
        run = runs("equivalence")[r][key]
        got, ref = run["async"], run["sync"]
        assert got["steps"] == ref["steps"] == worker.STEPS
        for t in range(worker.STEPS):
            _equal(got["grads"][t], ref["grads"][t], f"{key} rank {r} step {t} gradient")
            assert got["traffic"][t] == ref["traffic"][t], (key, r, t)
        _equal(got["memory"], ref["memory"], f"{key} rank {r} memory")
        _equal(got["params"], ref["params"], f"{key} rank {r} parameters")
    # negative control: the compressed steps differ from the warm-up's plain mean, and the ranks agree
    a, b = runs("equivalence")[0][key]["async"], runs("equivalence")[1][key]["async"]
    assert torch.equal(a["params"], b["params"])
    method = key.split(":")[0]
    if method != "mean":
        assert len(a["memory"][next(iter(a["memory"]))]) > 1, "the scenario should have several buckets"


@pytest.mark.parametrize("key", [f"{m}:{c}" for m in worker.METHODS for c in ("identity", "cq", "wangni")])
def test_async_hooks_called_by_hand_match_the_synchronous_ones(runs, key):
    """Unbound, buckets appearing and changing size, all buckets of a step in flight together."""
    for r in range(worker.WORLD):
        run = runs("by_hand")[r][key]
        _equal(run["async"], run["sync"], f"{key} rank {r}")


def test_the_comparison_can_fail(runs):
    """Negative control: the compared gradients do depend on the method and the compressor."""
    eq = runs("equivalence")[0]
    last = {key: eq[key]["async"]["grads"][-1] for key in ("mean:cq", "ef:cq", "mean:sign", "mean:identity")}
    assert torch.equal(eq["mean:cq"]["async"]["grads"][0], eq["mean:identity"]["sync"]["grads"][0])  # warm-up
    keys = list(last)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not torch.equal(last[a], last[b]), (a, b)


@pytest.mark.parametrize("key", ["ef21:identity", "ef:cq", "mean:sign"])
def test_futures_are_pending_while_ddp_runs_the_backward(runs, key):
    """Rank 1 joins a step's collectives only after rank 0's last hook: rank 0's futures were all
    pending when its hooks returned and still are at its last bucket, so DDP went on with the
    backward pass (called the later buckets' hooks) while the earlier buckets were in flight."""
    r0, r1 = runs("pending")[0][key], runs("pending")[1][key]
    assert r0["state_step"] == r1["state_step"] == len(r0["steps"]) == worker.STEPS - 1
    assert not any(s["timed_out"] for s in r1["steps"]), "rank 0's hook blocked until rank 1 joined"
    for s in r0["steps"]:
        assert s["done_at_return"] and not any(s["done_at_return"]), s
        assert s["done_at_last"] == [False] * len(s["done_at_return"]), s
    assert max(len(s["done_at_return"]) for s in r0["steps"]) >= 3, "several buckets in flight at once"
    assert {s["step"] for s in r0["steps"]} >= {0, 1, 2, 3}  # warm-up (plain mean) and compressed steps
    assert torch.equal(r0["params"], r1["params"])


def test_an_error_in_the_callback_reaches_backward_on_every_rank(runs):
    """A decoder that raises (in the completion callback): every rank's backward raises it, with the
    bucket, step and rank in the message, and the ranks' collectives stay matched (no hang)."""
    for r in range(worker.WORLD):
        res = runs("errors")[r]["decode"]
        assert res["step"] == 2, res  # the first compressed step
        assert "PayloadError: injected: the payload cannot be decoded" in res["error"]
        assert "while compressing DDP bucket" in res["error"] and f"at step 2 on rank {r} of 2" in res["error"]
        assert res["after"] == 2.0


@pytest.mark.parametrize("name", ["identity", "cq", "wangni"])
def test_a_diverged_rank_makes_every_backward_raise(runs, name):
    """Rank 1's bucket holds NaN at step 2: it raises its NonFiniteError, rank 0 a DistributedError,
    on every path (all-reduce flag, length word of the frame, length exchange)."""
    r0, r1 = runs("errors")[0][f"nan:{name}"], runs("errors")[1][f"nan:{name}"]
    assert r0["step"] == r1["step"] == 2
    assert "DistributedError: another rank failed to compress DDP bucket 0" in r0["error"]
    assert "NonFiniteError: X holds NaN" in r1["error"]
    assert r0["after"] == r1["after"] == 2.0


def test_a_group_of_one_process(tmp_path):
    spawn(worker.single_worker, tmp_path, nprocs=1)
    for key, run in torch.load(tmp_path / "single.pt", weights_only=False).items():
        _equal(run["async"], run["sync"], key)


# ------------------------------------------------------------------ single process
def test_deferred_failure_flags_raise_at_the_next_step_on_every_rank():
    """The GPU path of the all-reduce's failure flag (no host read in the callback), with a
    stand-in for the CUDA event: checked at the first hook of the next step, not before."""
    from types import SimpleNamespace

    from commpress.errors import DistributedError, NonFiniteError
    from commpress.integrations import ddp as cpddp

    done = SimpleNamespace(synchronize=lambda: None)
    state = cpddp.CompressionHookState("identity")
    state.step = 3
    ok = cpddp._Deferred(2, 0, 0, None, torch.zeros(1), done)
    failed = cpddp._Deferred(3, 1, 0, None, torch.ones(1), done)  # this step's: not due yet
    state._deferred = [ok, failed]
    state._check_deferred()
    assert state._deferred == [failed]
    state.step = 4
    with pytest.raises(DistributedError, match="another rank failed to compress DDP bucket 1") as info:
        state._check_deferred()
    assert any("found at the first hook of step 4" in note for note in info.value.__notes__)
    assert state._deferred == []
    own = NonFiniteError("X holds NaN")  # the failing rank raises its own error
    state._deferred = [cpddp._Deferred(4, 0, 1, own, torch.ones(1), done)]
    state.step = 5
    with pytest.raises(NonFiniteError, match="X holds NaN"):
        state._check_deferred()


def test_payload_sizes_come_from_the_layout_or_not_at_all():
    """One collective needs every rank's payload size before encoding: from the layout when the
    compressor declares data-independent sizes, else None (the hook then exchanges lengths)."""
    import commpress as cp
    from commpress.integrations import ddp as cpddp

    x = torch.randn(37, generator=torch.Generator().manual_seed(0))
    for name in ("cq", "sign", "permk", "natural", "identity", "qsgd", "block"):
        state = cpddp.CompressionHookState(name)
        for world in (2, 3):
            sizes = state._payload_sizes(5, x, world)
            C = cp.compressors.make(name)
            assert sizes == [len(C.encode(x[None], 5, clients=[r], n=world)[0]) for r in range(world)], name
    for name in ("wangni", "iscc", "compose", "fcc"):  # data-dependent sizes, or no layout
        assert cpddp.CompressionHookState(name)._payload_sizes(5, x, 2) is None, name
