"""Compressed reduce-scatter under FSDP2 (``fully_shard``), gloo on the CPU, 2 and 4 ranks.

Identity == FSDP's own reduce-scatter; 1-bit EF reaches the uncompressed run's accuracy within one
point (and plain 1-bit averaging, the negative control, does not); a checkpoint taken mid-run and
resumed gives the uninterrupted iterates; PermK moves 1/n of the dense bytes; a rank with NaN
gradients makes every rank raise.
"""

from __future__ import annotations

import pytest
import torch

from commpress.errors import ConfigError
from commpress.integrations import fsdp as cpfsdp
from tests.integrations import _fsdp_worker as worker
from tests.integrations._spawn import spawn


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache: dict = {}

    def get(scenario: str, world: int = 2) -> list:
        if (scenario, world) not in cache:
            tmp = tmp_path_factory.mktemp(f"fsdp_{scenario}_{world}")
            spawn(worker.worker, tmp, scenario, world, nprocs=world)
            cache[scenario, world] = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(world)]
        return cache[scenario, world]

    return get


@pytest.mark.parametrize("world", [2, 4])
def test_identity_equals_fsdps_own_reduce_scatter(runs, world):
    for r, res in enumerate(runs("equality", world)):
        for key in ("identity", "identity_ef21"):  # EF21 with identity: g = the mean gradient
            for t, (a, b) in enumerate(zip(res[key]["iterates"], res["default"]["iterates"])):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{key} rank {r} step {t}")
        assert res["identity"]["groups"] == ["0", "2", "4"]  # the three Linear layers' groups
    # negative control: PermK changes the iterates
    assert not torch.allclose(runs("equality", world)[0]["permk"]["iterates"][-1],
                              runs("equality", world)[0]["default"]["iterates"][-1])


@pytest.mark.parametrize("world", [2, 4])
def test_permk_sends_one_nth_of_the_dense_bytes(runs, world):
    for res in runs("equality", world):
        dense = res["identity"]["payload_bytes"]
        # each peer gets its block of the chunk: 1/n of it (blocks of chunks not divisible by n differ by 1)
        assert dense > 0 and abs(res["permk"]["payload_bytes"] * world - dense) <= 4 * world * 3 * 4


def test_one_bit_ef_reaches_the_uncompressed_accuracy_within_one_point(runs):
    res = runs("accuracy")[0]
    default, ef, plain = (res[k]["accuracy"] for k in ("default", "ef_sign", "mean_sign"))
    assert default > 0.9, default  # the task is learnt
    assert ef >= default - 0.01, (ef, default)
    assert plain < default - 0.01, (plain, default)  # negative control: without error feedback it is not
    dense_per_step = runs("equality")[0]["identity"]["payload_bytes"] / 4  # float32 chunks to the peer
    assert res["ef_sign"]["payload_bytes"] / 150 < dense_per_step / 16  # 1 bit (+ scales) instead of 32


@pytest.mark.parametrize("key", ["ef:sign", "ef21:topk", "diana:qsgd"])
def test_a_resumed_run_continues_with_the_same_iterates(runs, key):
    for r, res in enumerate(runs("resume")):
        straight, resumed = res[key]["straight"]["iterates"], res[key]["resumed"]["iterates"]
        assert len(straight) == len(resumed) == 6
        for t, (a, b) in enumerate(zip(straight, resumed)):
            assert torch.equal(a, b), f"{key} rank {r} step {t}"
        assert not torch.equal(straight[-1], straight[-2])


def test_a_rank_with_nan_gradients_makes_every_rank_raise(runs):
    r0, r1 = runs("failure")
    assert r0["error"].startswith("DistributedError: rank(s) [1] failed to compress"), r0
    assert r1["error"].startswith("NonFiniteError"), r1
    assert r0["after"] == r1["after"] == 2.0  # the group still works


def test_bad_settings_get_one_clear_error():
    with pytest.raises(ConfigError, match="method must be one of"):
        cpfsdp.CompressedReduceScatter("sign", "powersgd")
    with pytest.raises(ConfigError, match="warmup_steps"):
        cpfsdp.CompressedReduceScatter("sign", warmup_steps=-1)
    with pytest.raises(ConfigError, match="alpha"):
        cpfsdp.CompressedReduceScatter("qsgd", "diana", alpha=2.0)
    with pytest.raises(ConfigError, match="no FSDP module"):
        cpfsdp.register(torch.nn.Linear(2, 2), "sign")
    comm = cpfsdp.CompressedReduceScatter("sign", "ef", seed=1)
    with pytest.raises(ConfigError, match="saved with method='mean'"):
        comm.load_state_dict(cpfsdp.CompressedReduceScatter("sign", "mean", seed=1).state_dict())
