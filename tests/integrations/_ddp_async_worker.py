"""What each of the 2 gloo ranks runs for tests/integrations/test_ddp_async.py (one spawn per scenario).

The asynchronous hooks of ``commpress.integrations.ddp`` against the frozen synchronous ones
(``_ddp_sync_reference``), futures that are still pending while DDP goes on with the backward pass,
and errors raised in the completion callbacks. Every scenario records raw facts; the test process
checks them.
"""

from __future__ import annotations

import datetime
import gc
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import commpress as cp
from commpress.errors import PayloadError
from commpress.integrations import ddp as cpddp
from tests.integrations import _ddp_sync_reference as syncref
from tests.integrations._ddp_worker import FakeBucket, fake_grad
from tests.integrations._spawn import exit_now, log_to

WORLD = 2
STEPS = 5  # 2 warm-up steps (DDP rebuilds its buckets after the first), 3 compressed
#: identity: the all-reduce path; sign ... permk: one all-gather of frames sized from the layout;
#: wangni (data-dependent size) and compose (no layout): lengths first, then the payloads.
COMPRESSORS = ("identity", "sign", "cq", "qsgd", "natural", "permk", "wangni", "compose")
METHODS = ("mean", "ef", "ef21", "diana")
#: Also with find_unused_parameters: DDP all-reduces its unused-parameter map after the last
#: bucket's hook, while the hooks' collectives are in flight.
UNUSED = (("mean", "cq"), ("ef21", "wangni"), ("diana", "identity"))
BUCKET_MB = 1e-4  # 25 float32 entries: 4 buckets after DDP's rebuild (one before it)
SIGNAL_TIMEOUT = datetime.timedelta(seconds=30)


def model() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                        nn.Linear(8, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return net


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * rank + step)
    return torch.randn(8, 6, generator=g), torch.randn(8, 3, generator=g)


def _step(ddp: DDP, rank: int, t: int) -> None:
    x, y = _batch(rank, t)
    nn.functional.mse_loss(ddp(x), y).backward()


def _state_kwargs(method: str) -> dict:
    return {"seed": 9, "warmup_steps": 2, **({"alpha": 0.5} if method == "diana" else {})}


# ------------------------------------------------------------------ async == sync, bit for bit
def _train(module, name: str, method: str, rank: int, **ddp_kwargs) -> dict:
    ddp = DDP(model(), bucket_cap_mb=BUCKET_MB, **ddp_kwargs)
    state = module.register(ddp, name, method, **_state_kwargs(method))
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    grads, traffic = [], []
    for t in range(STEPS):
        opt.zero_grad()
        _step(ddp, rank, t)
        grads.append(torch.cat([p.grad.reshape(-1) for p in ddp.parameters()]).clone())
        traffic.append((state.traffic.last_payload_bytes, state.traffic.last_wire_bytes))
        opt.step()
    memory = {n: {i: v.clone() for i, v in getattr(state, n).items()} for n in type(state)._memories}
    return {"grads": grads, "traffic": traffic, "memory": memory, "steps": state.step,
            "params": torch.cat([p.detach().reshape(-1) for p in ddp.parameters()]).clone()}


def scenario_equivalence(rank: int) -> dict:
    runs = [(method, name, {}) for method in METHODS for name in COMPRESSORS]
    runs += [(method, name, {"find_unused_parameters": True}) for method, name in UNUSED]
    result = {}
    for method, name, kwargs in runs:
        key = f"{method}:{name}" + (":unused" if kwargs else "")
        result[key] = {"async": _train(cpddp, name, method, rank, **kwargs),
                       "sync": _train(syncref, name, method, rank, **kwargs)}
    return result


PLAN = [[20]] * 3 + [[20, 6]] * 2 + [[13]] * 2  # a second bucket appears, then bucket 0 shrinks


def _by_hand(module, name: str, method: str, rank: int) -> dict:
    cls, hook = module.METHODS[method]
    state = cls(name, **_state_kwargs(method))
    outs = []
    for t, sizes in enumerate(PLAN):
        futures = [hook(state, FakeBucket(b, fake_grad(rank, t, b, d), last=b == len(sizes) - 1))
                   for b, d in enumerate(sizes)]  # every bucket of the step in flight at once
        outs.append([f.wait().clone() for f in futures])
    memory = {n: {i: v.clone() for i, v in getattr(state, n).items()} for n in cls._memories}
    return {"outs": outs, "memory": memory, "payload": state.traffic.payload_bytes, "wire": state.traffic.wire_bytes}


def scenario_by_hand(rank: int) -> dict:
    """Hooks called by hand, unbound: buckets appear and change size (memory restarts)."""
    return {f"{method}:{name}": {"async": _by_hand(cpddp, name, method, rank),
                                 "sync": _by_hand(syncref, name, method, rank)}
            for method in METHODS for name in ("identity", "cq", "wangni")}


# ------------------------------------------------------------------ pending futures
def scenario_pending(rank: int, signals: dist.Store) -> dict:
    """Rank 1 calls each step's first hook only once rank 0 has called its last one.

    So rank 0's collectives cannot complete before rank 0's backward has run to its end: every
    future rank 0's hooks return must be pending, and DDP must have gone on calling the hooks of
    the later buckets meanwhile. (A synchronous hook would block in the first bucket: rank 1
    then gives up waiting after SIGNAL_TIMEOUT and the test fails instead of hanging.)
    """
    result = {}
    for method, name in (("ef21", "identity"), ("ef", "cq"), ("mean", "sign")):
        cls, hook = cpddp.METHODS[method]
        ddp = DDP(model(), bucket_cap_mb=BUCKET_MB)
        state = cls(name, **_state_kwargs(method)).bind(ddp)
        steps: list[dict] = []
        in_flight: list[torch.futures.Future] = []

        def delayed(st, bucket, method=method, name=name):
            step = st.step
            if not steps or steps[-1]["step"] != step:
                steps.append({"step": step, "done_at_return": [], "done_at_last": None, "timed_out": False})
                in_flight.clear()
                if rank == 1:
                    try:
                        signals.wait([f"{method}:{name}:{step}"], SIGNAL_TIMEOUT)
                    except RuntimeError:  # a timeout: rank 0's hook did not return
                        steps[-1]["timed_out"] = True
            fut = hook(st, bucket)
            steps[-1]["done_at_return"].append(fut.done())
            in_flight.append(fut)
            if rank == 0 and bucket.is_last():
                steps[-1]["done_at_last"] = [f.done() for f in in_flight]
                signals.set(f"{method}:{name}:{step}", "go")
            return fut

        ddp.register_comm_hook(state, delayed)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
        for t in range(STEPS - 1):
            opt.zero_grad()
            _step(ddp, rank, t)
            opt.step()
        result[f"{method}:{name}"] = {"steps": steps, "state_step": state.step,
                                      "params": torch.cat([p.detach().reshape(-1) for p in ddp.parameters()])}
    return result


# ------------------------------------------------------------------ errors in the callbacks
class BrokenDecode(type(cp.compressors.make("sign"))):
    """Sign whose decoder fails: an error raised in the completion callback, on every rank."""

    def decode(self, *args, **kwargs):
        raise PayloadError("injected: the payload cannot be decoded")


def _failing_run(rank: int, compressor, method: str, poison: bool) -> dict:
    """Train until backward raises; then check that the group still works (nobody hangs)."""
    cls, hook = cpddp.METHODS[method]
    ddp = DDP(model(), bucket_cap_mb=BUCKET_MB)
    state = cls(compressor, **_state_kwargs(method)).bind(ddp)

    def poisoned(st, bucket):
        if poison and rank == 1 and st.step == 2 and bucket.index() == 0:
            bucket.buffer()[0] = float("nan")  # rank 1 diverged: its compressor refuses NaN
        return hook(st, bucket)

    ddp.register_comm_hook(state, poisoned)
    out = {"error": None, "step": None}
    for t in range(STEPS):
        try:
            _step(ddp, rank, t)
        except Exception as err:  # noqa: BLE001 - the error is the result
            out["error"], out["step"] = f"{type(err).__name__}: {err}", t
            break
    check = torch.ones(1)
    dist.all_reduce(check)  # the ranks' collectives are still matched
    out["after"] = float(check)
    return out


def scenario_errors(rank: int) -> dict:
    result = {"decode": _failing_run(rank, BrokenDecode(), "ef", poison=False)}
    for name in ("identity", "cq", "wangni"):  # all-reduce, one all-gather, lengths first
        result[f"nan:{name}"] = _failing_run(rank, name, "mean", poison=True)
    return result


SCENARIOS = {"equivalence": scenario_equivalence, "by_hand": scenario_by_hand, "pending": scenario_pending,
             "errors": scenario_errors}


def worker(rank: int, scenario: str, store: str, out_dir: str) -> None:
    """One scenario of ``SCENARIOS`` (one spawn each: a rank that dies takes one scenario with it)."""
    log = log_to(out_dir, rank)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        if scenario == "pending":
            signals = dist.FileStore(os.path.join(out_dir, "signals"), WORLD)  # out of band: no collective
            result = scenario_pending(rank, signals)
            del signals
        else:
            result = SCENARIOS[scenario](rank)
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        # DDP models in reference cycles keep the process group alive past destroy_process_group;
        # collect them (and the hooks' callbacks) while Python is alive.
        gc.collect()
        dist.destroy_process_group()
    print(f"rank {rank}: {scenario} done", file=sys.stderr)
    exit_now(log)


def single_worker(rank: int, store: str, out_dir: str) -> None:
    """A group of one process (a frame of one rank, no peer): async == sync there too."""
    log = log_to(out_dir, 0)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    try:
        results = {f"{method}:{name}": {"async": _train(cpddp, name, method, 0),
                                        "sync": _train(syncref, name, method, 0)}
                   for method, name in (("ef", "cq"), ("diana", "identity"), ("mean", "wangni"), ("ef21", "permk"))}
        torch.save(results, os.path.join(out_dir, "single.pt"))
    finally:
        gc.collect()
        dist.destroy_process_group()
    exit_now(log)
