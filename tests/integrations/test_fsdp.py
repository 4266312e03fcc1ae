"""Compressed reduce-scatter under FSDP2 (``fully_shard``), gloo on the CPU, 2 and 4 ranks.

Identity == FSDP's own reduce-scatter; 1-bit EF reaches the uncompressed run's accuracy within one
point (and plain 1-bit averaging, the negative control, does not); a checkpoint taken mid-run and
resumed gives the uninterrupted iterates; PermK moves 1/n of the dense bytes; a rank with NaN
gradients makes every rank raise.

The compressed parameter all-gather (``params=``): the lossless mode gives FSDP's own iterates bit
for bit; int8 / int4 parameters are within the blockwise bound and the same on every rank (a
decoder that drops the scales, or swaps the ranks' shards, fails these checks); the bytes are
exact; int8 parameters with 1-bit EF gradients reach the uncompressed accuracy within one point;
NaN parameters on one rank make every rank raise. The quantizer itself is tested in-process.
"""

from __future__ import annotations

import pytest
import torch

from commpress.errors import ConfigError, NonFiniteError
from commpress.integrations import fsdp as cpfsdp
from commpress.integrations import fsdp_params as fp
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


# ---------------------------------------------------------------------- the parameter all-gather
def test_the_lossless_param_gather_gives_fsdps_own_iterates_bit_for_bit(runs):
    for r, res in enumerate(runs("params")):
        for t, (a, b) in enumerate(zip(res["none"]["iterates"], res["default"]["iterates"])):
            assert float((a - b).abs().max()) == 0.0, f"rank {r} step {t}"
        assert not torch.equal(res["int8"]["iterates"][-1], res["default"]["iterates"][-1])  # int8 is not lossless
        ok = res["gathered:none:None"]
        assert torch.equal(ok["used"], ok["exact"]) and ok["same_on_every_rank"]
        broken = res["gathered:none:order"]  # negative control: a decoder that swaps the ranks' shards
        assert not torch.equal(broken["used"], broken["exact"])


@pytest.mark.parametrize(("mode", "levels"), [("int8", 127), ("int4", 7)])
def test_quantized_params_are_within_the_bound_and_the_same_on_every_rank(runs, mode, levels):
    for res in runs("params"):
        g = res[f"gathered:{mode}:None"]
        err = (g["used"] - g["exact"]).abs().max()
        bound = g["exact"].abs().max() / (2 * levels)  # every block's absmax is at most the largest entry
        assert 0 < err <= bound * (1 + 1e-5), (float(err), float(bound))
        assert g["same_on_every_rank"]  # each rank decodes every shard, its own included
    broken = runs("params")[0]["gathered:int8:scales"]  # negative control: scales dropped
    assert (broken["used"] - broken["exact"]).abs().max() > broken["exact"].abs().max() / 254


def test_param_gather_bytes_are_exact(runs):
    for res in runs("params"):
        for mode in ("none", "int8"):
            row = res[mode]
            assert row["param_steps"] == 4
            assert set(row["gather_calls"].values()) == {2 * 4 + 2}  # forward + backward each step, + 2 evaluations
            per_step = sum(2 * fp.payload_bytes(m, mode) for m in row["shards"].values())  # world - 1 = 1 peer
            assert row["param_payload_bytes"] == 4 * per_step
        assert res["int8"]["param_payload_bytes"] < res["none"]["param_payload_bytes"] / 3.5
        mixed = res["mixed"]  # a uint8 group: FSDP's plain all-gather
        assert mixed["plain_calls"] == 1 and mixed["gathered"].tolist() == [1, 200, 2, 200]


def test_int8_params_with_one_bit_ef_reach_the_uncompressed_accuracy(runs):
    res = runs("accuracy")[0]
    default, int8 = res["default"]["accuracy"], res["ef_sign_int8"]["accuracy"]
    assert int8 >= default - 0.01, (int8, default)
    # the negative control is the test above: 1-bit averaging without error feedback falls short


def test_nan_params_on_one_rank_make_every_rank_raise(runs):
    r0, r1 = runs("params")
    assert r0["error"].startswith("DistributedError: rank(s) [1] have NaN or Inf parameters"), r0["error"]
    assert r1["error"].startswith("DistributedError: rank(s) [1]") and "(this rank)" in r1["error"], r1["error"]
    assert r0["after"] == r1["after"] == 2.0  # the group still works


@pytest.mark.parametrize(("mode", "bits"), [("int8", 8), ("int4", 4)])
def test_the_block_quantizer_bound_holds_and_is_attained(mode, bits):
    g = torch.Generator().manual_seed(0)
    levels = 2 ** (bits - 1) - 1
    worst = 0.0
    for m in (1, 7, 255, 256, 257, 1000, 4099):
        for scale in (1e-30, 1e-3, 1.0, 1e30):
            x = scale * torch.randn(m, generator=g) * torch.rand(m, generator=g).pow(3)
            payload = fp.encode(x, mode, 256)
            assert payload.dtype == torch.uint8 and payload.numel() == fp.payload_bytes(m, mode, 256)
            assert payload.numel() == 4 * -(-m // 256) + -(-m * bits // 8)  # scales + packed codes, nothing else
            y = fp.decode(payload, m, mode, 256)[0]
            bound = fp.error_bound(x, mode, 256)
            blocks = torch.nn.functional.pad(x, (0, -m % 256)).reshape(-1, 256).abs().amax(1)
            torch.testing.assert_close(bound, (blocks / (2 * levels)).repeat_interleave(256)[:m])
            ratio = ((y - x).abs() / bound.clamp_min(1e-45)).max()
            assert ratio <= 1 + 1e-5, (m, scale, float(ratio))
            if m >= 256:
                worst = max(worst, float(ratio))
            assert torch.equal(fp.decode(payload, m, mode, 256), fp.decode(payload.clone(), m, mode, 256))
    assert worst > 0.95  # attained: round to nearest loses up to half a step
    for m in (1, 300):  # a zero block decodes to zeros exactly (scale 0)
        assert torch.equal(fp.decode(fp.encode(torch.zeros(m), mode), m, mode)[0], torch.zeros(m))
    # the extremes of each block are exact (the code +-L times the scale a/L)
    x = torch.tensor([3.0, -1.5, 0.0, -3.0])
    assert fp.decode(fp.encode(x, mode, 4), 4, mode, 4)[0][[0, 3]].tolist() == [3.0, -3.0]


def test_the_lossless_and_bf16_modes():
    x = torch.randn(1001, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fp.decode(fp.encode(x, "none"), 1001, "none")[0], x)
    assert fp.payload_bytes(1001, "none") == 4004 and fp.payload_bytes(1001, "bf16") == 2002
    y = fp.decode(fp.encode(x, "bf16"), 1001, "bf16")[0]
    assert torch.equal(y, x.to(torch.bfloat16).float())
    assert ((y - x).abs() <= x.abs() * 2.0**-8).all()


def test_non_finite_params_and_bad_settings_get_one_clear_error():
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.ones(600)
        x[300] = bad
        with pytest.raises(NonFiniteError, match="NaN or Inf \\(first in block 1 of 256"):
            fp.encode(x, "int8")
    with pytest.raises(ConfigError, match="mode must be one of"):
        fp.CompressedAllGather("int3")
    with pytest.raises(ConfigError, match="block_size"):
        fp.CompressedAllGather("int8", block_size=0)
    with pytest.raises(ConfigError, match="mode must be one of"):
        cpfsdp.register(torch.nn.Linear(2, 2), "sign", params="fp8")
