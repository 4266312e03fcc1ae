"""What each of the 2 gloo ranks runs for tests/integrations/test_ddp.py (one spawn for all tests).

Every scenario records raw facts (local gradients, hook outputs, byte counts, states); the
test process checks them against references it computes itself.
"""

from __future__ import annotations

import gc
import io
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import commpress as cp
from commpress.integrations import ddp as cpddp
from tests.integrations._spawn import exit_now, log_to

WORLD = 2
STEPS = 5


class FakeBucket:
    """The three GradBucket methods the hooks use, for hooks called by hand."""

    def __init__(self, index: int, buffer: torch.Tensor, last: bool, params: list | None = None) -> None:
        self._index, self._buffer, self._last = index, buffer, last
        if params is not None:
            self.parameters = lambda: params

    def index(self) -> int:
        return self._index

    def buffer(self) -> torch.Tensor:
        return self._buffer

    def is_last(self) -> bool:
        return self._last


def fake_grad(rank: int, step: int, index: int, d: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 * rank + 10 * step + index)
    return torch.randn(d, generator=g)


def _model() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * rank + step)
    return torch.randn(8, 6, generator=g), torch.randn(8, 3, generator=g)


def _train(model: nn.Module, rank: int, steps: range, opt: torch.optim.Optimizer, after_step=None) -> list[torch.Tensor]:
    grads = []
    for t in steps:
        x, y = _batch(rank, t)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone())
        if after_step is not None:
            after_step()
        opt.step()
    return grads


def _ddp(model: nn.Module, **kwargs) -> DDP:
    return DDP(model, **kwargs)


def scenario_identity(rank: int) -> dict:
    """Default all-reduce vs the compressed hook with identity: same gradients."""
    base = _ddp(_model())
    hooked = _ddp(_model())
    state = cpddp.CompressionHookState("identity", warmup_steps=2)
    hooked.register_comm_hook(state, cpddp.compressed_allreduce_hook)
    g_base = _train(base, rank, range(STEPS), torch.optim.SGD(base.parameters(), lr=0.1))
    g_hook = _train(hooked, rank, range(STEPS), torch.optim.SGD(hooked.parameters(), lr=0.1))
    return {"base": g_base, "hook": g_hook, "bytes": state.traffic.last_payload_bytes, "steps": state.step}


def scenario_exact(rank: int, name: str, method: str = "mean", bind: bool = False, **ddp_kwargs) -> dict:
    """Real DDP: record every bucket's local gradient, its parameters and the hook's output."""
    model = _ddp(_model(), **ddp_kwargs)
    cls, hook = cpddp.METHODS[method]
    state = cls(name, seed=7, warmup_steps=2)
    if bind:
        state.bind(model)
    position = {id(p): i for i, p in enumerate(model.parameters())}
    calls: list[dict] = []

    def recording_hook(st, bucket):
        local = bucket.buffer().clone()
        step = st.step
        keys = [(position[id(p)], p.numel()) for p in bucket.parameters()]
        out = hook(st, bucket).wait().clone()
        calls.append({"step": step, "index": bucket.index(), "local": local, "out": out, "keys": keys})
        return _done(bucket.buffer())  # the hook wrote its output into the buffer

    model.register_comm_hook(state, recording_hook)
    per_step = []
    _train(model, rank, range(STEPS), torch.optim.SGD(model.parameters(), lr=0.1),
           after_step=lambda: per_step.append((state.traffic.last_payload_bytes, state.traffic.last_wire_bytes)))
    memory = {name: {i: t.clone() for i, t in getattr(state, name).items()} for name in cls._memories}
    return {"calls": calls, "per_step": per_step, "steps": state.step, "memory": memory}


def _done(t: torch.Tensor) -> torch.futures.Future:
    fut: torch.futures.Future = torch.futures.Future()
    fut.set_result(t)
    return fut


def scenario_resume(rank: int) -> dict:
    """EF with cq: save after 3 steps, continue 3; reload and continue 3: identical gradients."""
    model = _ddp(_model())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = cpddp.register(model, "cq", "ef", seed=3, warmup_steps=2)
    _train(model, rank, range(3), opt)
    buffer = io.BytesIO()
    torch.save({"state": state, "model": model.module.state_dict(), "opt": opt.state_dict()}, buffer)
    continued = _train(model, rank, range(3, 6), opt)

    def resumed(keep_memory: bool, bind: bool = True) -> list[torch.Tensor]:
        buffer.seek(0)
        saved = torch.load(buffer, weights_only=False)
        module = _model()
        module.load_state_dict(saved["model"])
        again = _ddp(module)
        opt2 = torch.optim.SGD(again.parameters(), lr=0.1, momentum=0.9)
        opt2.load_state_dict(saved["opt"])
        st = saved["state"]
        assert st.process_group is None and st.step == 3
        if not keep_memory:
            st.residuals.clear()
        again.register_comm_hook(st.bind(again) if bind else st, cpddp.ef_hook)
        return _train(again, rank, range(3, 6), opt2)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unbound = resumed(True, bind=False)

    return {"continued": continued, "resumed": resumed(True), "no_memory": resumed(False),
            "residual_norm": float(state.residuals[0].norm()), "repr": repr(state), "unbound": unbound,
            "unbound_warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)]}


def _run_fake(state, hook, rank: int, plan: list[list[int]]) -> list[list[torch.Tensor]]:
    """Call ``hook`` by hand: ``plan[t]`` is the list of bucket sizes of step t."""
    outs = []
    for t, sizes in enumerate(plan):
        row = []
        for b, d in enumerate(sizes):
            bucket = FakeBucket(b, fake_grad(rank, t, b, d), last=b == len(sizes) - 1)
            row.append(hook(state, bucket).wait().clone())
        outs.append(row)
    return outs


def scenario_stateful(rank: int) -> dict:
    """EF, EF21 and DIANA called by hand on one bucket of 20 entries, then 2 buckets, then a resize."""
    plan = [[20]] * 5 + [[20, 6]] * 2 + [[13]] * 2
    result = {}
    for method, compressor, extra in (("ef", "iq", {}), ("ef21", "cq", {}), ("diana", "cq", {"alpha": 0.5}),
                                      ("mean", "permk", {})):
        cls, hook = cpddp.METHODS[method]
        state = cls(compressor, seed=11, warmup_steps=2, **extra)
        outs = _run_fake(state, hook, rank, plan)
        memory = {name: {i: t.clone() for i, t in getattr(state, name).items()} for name in cls._memories}
        result[method] = {"outs": outs, "memory": memory, "steps": state.step,
                          "payload": state.traffic.payload_bytes, "wire": state.traffic.wire_bytes}
    return result


ALL_PLAN = [[37, 64]] * 4  # two buckets, an odd and a power-of-two size


def scenario_every_compressor(rank: int) -> dict:
    """Plain compressed averaging with every registered compressor that builds with its defaults."""
    result = {}
    for name in cp.compressors.names():
        try:
            cp.compressors.make(name)
        except cp.ConfigError:  # needs a parameter or a compressor not registered yet
            continue
        state = cpddp.CompressionHookState(name, seed=13, warmup_steps=2)
        outs = _run_fake(state, cpddp.compressed_allreduce_hook, rank, ALL_PLAN)
        result[name] = {"outs": outs, "payload": state.traffic.last_payload_bytes}
    return result


def scenario_failure(rank: int) -> dict:
    """Rank 1 compresses a NaN gradient after the warm-up: which error each rank raises."""
    result = {}
    for name in ("identity", "cq"):
        state = cpddp.CompressionHookState(name, warmup_steps=2)
        state.step = 2
        grad = torch.ones(10)
        if rank == 1:
            grad[3] = float("nan")
        try:
            cpddp.compressed_allreduce_hook(state, FakeBucket(0, grad, last=True)).wait()
            result[name] = "no error"
        except Exception as err:  # noqa: BLE001 - the class and message are the result
            result[name] = f"{type(err).__name__}: {err}"
    return result


REGROUP_SIZES = (4, 3, 5)
#: Buckets of each step as lists of parameter positions, in bucket order: DDP-like regroupings.
REGROUP_PLAN = [[[0, 1], [2]]] * 3 + [[[2, 1, 0]]] + [[[1], [0, 2]]] * 2


def scenario_regroup(rank: int) -> dict:
    """Bound EF / EF21 states whose buckets are regrouped after the warm-up: memory follows the parameters."""
    params = [nn.Parameter(torch.zeros(n)) for n in REGROUP_SIZES]
    holder = nn.ParameterList(params)
    result = {}
    for method, name, warmup in (("ef", "iq", 2), ("ef21", "cq", 2), ("ef", "iq", None), ("ef21", "cq", None)):
        cls, hook = cpddp.METHODS[method]
        state = cls(name, seed=5, warmup_steps=warmup).bind(holder)  # None: bound, so no dense steps
        outs = []
        for t, buckets in enumerate(REGROUP_PLAN):
            row = []
            for b, keys in enumerate(buckets):
                buf = torch.cat([fake_grad(rank, t, k, REGROUP_SIZES[k]) for k in keys])
                bucket = FakeBucket(b, buf, last=b == len(buckets) - 1, params=[params[k] for k in keys])
                row.append(hook(state, bucket).wait().clone())
            outs.append(row)
        result[method if warmup == 2 else f"{method}_nowarm"] = {
            "outs": outs, "layouts": dict(state.memory.layouts), "warmup": state.warmup_steps}
    unbound = cpddp.EFHookState("iq", seed=5)  # not bound: dense until DDP's rebuild
    buf = fake_grad(rank, 0, 0, REGROUP_SIZES[0])
    cpddp.ef_hook(unbound, FakeBucket(0, buf, last=True, params=[params[0]])).wait()
    result["unbound_warmup"] = unbound.warmup_steps
    return result


def worker(rank: int, store: str, out_dir: str) -> None:
    log = log_to(out_dir, rank)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        results = {
            "identity": scenario_identity(rank),
            # find_unused_parameters keeps DDP's two initial buckets (no rebuild)
            "exact_cq": scenario_exact(rank, "cq", bucket_cap_mb=1e-4, find_unused_parameters=True),
            "exact_identity": scenario_exact(rank, "identity", bucket_cap_mb=1e-4, find_unused_parameters=True),
            # per-bucket caps: two buckets at step 0, one after DDP's rebuild
            "rebuild_ef21": scenario_exact(rank, "cq", "ef21", bind=True, bucket_cap_mb_list=[1e-4] * 4),
            "resume": scenario_resume(rank),
            "stateful": scenario_stateful(rank),
            "regroup": scenario_regroup(rank),
            "every_compressor": scenario_every_compressor(rank),
            "failure": scenario_failure(rank),
        }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        # DDP models in reference cycles keep the process group alive past destroy_process_group;
        # collect them (and the hooks' Python callbacks) while Python is alive.
        gc.collect()
        dist.destroy_process_group()
    exit_now(log)
