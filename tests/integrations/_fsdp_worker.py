"""What each gloo rank runs for tests/integrations/test_fsdp.py (one spawn per scenario)."""

from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import fully_shard

from commpress.integrations import fsdp as cpfsdp
from commpress.integrations import fsdp_params
from tests.integrations._spawn import exit_now, log_to

DIM, CLASSES, HIDDEN = 12, 3, 16


def model() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(DIM, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                        nn.Linear(HIDDEN, CLASSES))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=g))
    for layer in net:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    fully_shard(net)
    return net


def data(rank: int, world: int, samples: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed 3-class problem (labels from a random linear map of the inputs), split over ranks."""
    g = torch.Generator().manual_seed(1)
    W = torch.randn(DIM, CLASSES, generator=g)
    X = torch.randn(samples, DIM, generator=g)
    y = (X @ W).argmax(1)
    return X[rank::world], y[rank::world]


def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = data(0, 1, 2560)
    return X[512:], y[512:]  # not the training samples


def full_params(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.full_tensor().reshape(-1) for p in net.parameters()]).detach().clone()


def train(rank: int, world: int, steps: int, compressor: str | None, method: str = "mean", lr: float = 0.1,
          resume_at: int | None = None, tmp: str = "", **kwargs) -> dict:
    net = model()
    compression = None if compressor is None else cpfsdp.register(net, compressor, method, **kwargs)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    X, y = data(rank, world)
    iterates, t = [], 0
    while t < steps:
        opt.zero_grad()
        nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
        iterates.append(full_params(net))
        t += 1
        if resume_at is not None and t == resume_at:  # save, forget everything, rebuild, load
            path = os.path.join(tmp, f"ckpt{rank}.pt")
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(),
                        "compression": compression.state_dict()}, path)
            del net, opt, compression
            gc.collect()
            net = model()
            compression = cpfsdp.register(net, compressor, method, **kwargs)
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
            saved = torch.load(path, weights_only=False)
            net.load_state_dict(saved["model"])
            opt.load_state_dict(saved["opt"])
            compression.load_state_dict(saved["compression"])
            resume_at = None
    Xt, yt = test_set()
    with torch.no_grad():
        accuracy = float((net(Xt).argmax(1) == yt).float().mean())
        loss = float(nn.functional.cross_entropy(net(Xt), yt))
    out = {"iterates": iterates, "accuracy": accuracy, "loss": loss}
    if compression is not None:
        out["payload_bytes"] = compression.payload_bytes
        out["wire_bytes"] = compression.wire_bytes
        out["groups"] = sorted(compression.comms)
        out["param_payload_bytes"] = compression.param_payload_bytes
        out["param_steps"] = compression.param_traffic.steps
        out["gather_calls"] = {k: g.calls for k, g in compression.gathers.items()}
        out["shards"] = {k: g.shard_numel for k, g in compression.gathers.items()}
    return out


def scenario_equality(rank: int, world: int) -> dict:
    return {"default": train(rank, world, 4, None),
            "identity": train(rank, world, 4, "identity", warmup_steps=0),
            "identity_ef21": train(rank, world, 4, "identity", "ef21", warmup_steps=0),
            "permk": train(rank, world, 4, "permk", warmup_steps=0)}


def scenario_accuracy(rank: int, world: int) -> dict:
    return {"default": train(rank, world, 150, None, lr=0.05),
            "ef_sign": train(rank, world, 150, "sign", "ef", lr=0.05),
            "mean_sign": train(rank, world, 150, "sign", "mean", lr=0.05),
            "ef_sign_int8": train(rank, world, 150, "sign", "ef", lr=0.05, params="int8")}


def unsharded_params(net: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """The parameters each layer computes with in one forward (FSDP's gathered ones), flat."""
    seen: list[torch.Tensor] = []

    def hook(layer, _inputs):
        seen.extend(p.detach().reshape(-1).clone() for p in (layer.weight, layer.bias))

    handles = [layer.register_forward_pre_hook(hook) for layer in net if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        net(X)
    for h in handles:
        h.remove()
    return torch.cat(seen)


def gathered_check(rank: int, world: int, mode: str, broken: str | None = None) -> dict:
    """One forward with ``params=mode``: the parameters it computes with, against the exact ones.
    ``broken``: a broken decoder (the negative controls): ``"scales"`` drops the scales,
    ``"order"`` swaps the ranks' shards."""
    net = model()
    cpfsdp.register(net, "identity", params=mode, param_block_size=32)
    X, _ = data(rank, world)
    original = fsdp_params.decode
    if broken == "scales":
        def bad(payloads, numel, mode, block_size, dtype):  # every scale read as 1
            nblocks = -(-numel // block_size)
            payloads = payloads.clone()
            payloads[:, : 4 * nblocks] = torch.ones(nblocks).view(torch.uint8)
            return original(payloads, numel, mode, block_size, dtype)
        fsdp_params.decode = bad
    elif broken == "order":
        fsdp_params.decode = lambda *a, **k: original(*a, **k).flip(0)
    try:
        used = unsharded_params(net, X)
    finally:
        fsdp_params.decode = original
    exact = full_params(net)
    every = [torch.empty_like(used) for _ in range(world)]
    dist.all_gather(every, used)
    return {"used": used, "exact": exact, "same_on_every_rank": all(torch.equal(e, used) for e in every)}


def scenario_params(rank: int, world: int) -> dict:
    out = {"default": train(rank, world, 4, "identity"),
           "none": train(rank, world, 4, "identity", params="none"),
           "int8": train(rank, world, 4, "identity", params="int8")}
    for mode, broken in (("none", None), ("int8", None), ("int4", None), ("none", "order"), ("int8", "scales")):
        out[f"gathered:{mode}:{broken}"] = gathered_check(rank, world, mode, broken)
    gather = fsdp_params.CompressedAllGather("int8")  # a uint8 (mixed-dtype) group: FSDP's plain all-gather
    mixed = torch.zeros(2 * world, dtype=torch.uint8)
    mixed[2 * rank : 2 * rank + 2] = torch.tensor([rank + 1, 200], dtype=torch.uint8)
    gather(mixed, mixed[2 * rank : 2 * rank + 2], dist.group.WORLD)
    out["mixed"] = {"gathered": mixed, "plain_calls": gather.plain_calls}
    net = model()  # rank 1's parameters turn NaN: every rank raises, none hangs
    cpfsdp.register(net, "identity", params="int8")
    if rank == 1:
        with torch.no_grad():
            net[2].weight.to_local().fill_(float("nan"))
    X, _ = data(rank, world)
    try:
        net(X)
        out["error"] = None
    except Exception as err:  # noqa: BLE001 - the error is the result
        out["error"] = f"{type(err).__name__}: {err}"
    check = torch.ones(1)
    dist.all_reduce(check)
    out["after"] = float(check)
    return out


def scenario_resume(rank: int, world: int, tmp: str) -> dict:
    out = {}
    for method, name in (("ef", "sign"), ("ef21", "topk"), ("diana", "qsgd")):
        kw = {"seed": 3}
        out[f"{method}:{name}"] = {"straight": train(rank, world, 6, name, method, **kw),
                                   "resumed": train(rank, world, 6, name, method, resume_at=3, tmp=tmp, **kw)}
    return out


def scenario_failure(rank: int, world: int) -> dict:
    net = model()
    cpfsdp.register(net, "qsgd", "mean", warmup_steps=0)
    X, y = data(rank, world)
    if rank == 1:
        X = X.clone()
        X[0, 0] = float("nan")
    try:
        nn.functional.cross_entropy(net(X), y).backward()
        error = None
    except Exception as err:  # noqa: BLE001 - the error is the result
        error = f"{type(err).__name__}: {err}"
    check = torch.ones(1)
    dist.all_reduce(check)
    return {"error": error, "after": float(check)}


def worker(rank: int, scenario: str, world: int, store: str, out_dir: str) -> None:
    log = log_to(out_dir, rank)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        if scenario == "resume":
            result = scenario_resume(rank, world, out_dir)
        else:
            result = {"equality": scenario_equality, "accuracy": scenario_accuracy,
                      "failure": scenario_failure, "params": scenario_params}[scenario](rank, world)
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        gc.collect()
        dist.destroy_process_group()
    exit_now(log)
