"""One seed, every device: the same private draws and the same payload bytes (issue 12).

Parametrised over the devices present: on a CPU-only machine it runs for ``"cpu"`` (the draws made
with an explicit device, the compressors fed that device's tensors); on a GPU machine it also runs
for ``"cuda"`` and compares against the CPU. The inputs are dyadic (multiples of 1/8, distinct
magnitudes within a row), so norms, sums and Hadamard transforms are exact whatever the order of a
device's reductions: a difference in the bytes can only come from the randomness or the packing.
"""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress import _rng

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_private_and_shared_draws_are_the_same_on_every_device(device):
    clients = torch.tensor([5, 0, 3])
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        for rows in (None, clients):
            here = _rng.private_rand(7, "dev", 6, (4, 1001), rows, dtype=dtype, device=device)
            assert here.device.type == device and here.dtype == dtype
            assert torch.equal(here.cpu(), _rng.private_rand(7, "dev", 6, (4, 1001), rows, dtype=dtype))
    big = _rng.private_rand(7, "dev", 2, (300_001,), None, dtype=torch.float32, device=device)  # tiles on the CPU
    assert torch.equal(big.cpu(), _rng.private_rand(7, "dev", 2, (300_001,), None, dtype=torch.float32))
    assert torch.equal(_rng.private_words(7, "w", 6, 333, clients, device).cpu(),
                       _rng.private_words(7, "w", 6, 333, clients))
    assert torch.equal(_rng.shared_words(7, "w", 999, device).cpu(), _rng.shared_words(7, "w", 999))
    for high in (2, 256, 1000, 3 * 2**30, 2**40 + 1):
        here = _rng.shared_integers(7, "h", high, 5001, device)
        assert torch.equal(here.cpu(), _rng.shared_integers(7, "h", high, 5001))
    for d, k in ((300, 30), (5000, 17)):
        mask = _rng.private_subset_mask(7, "m", 6, d, k, clients, device)
        assert mask.device.type == device
        assert torch.equal(mask.cpu(), _rng.private_subset_mask(7, "m", 6, d, k, clients))
        assert torch.equal(_rng.private_randperm_topk(7, "m", 6, d, k, clients, device).cpu(),
                           _rng.private_randperm_topk(7, "m", 6, d, k, clients))


def _dyadic(n: int, d: int, dtype: torch.dtype) -> torch.Tensor:
    """Rows of distinct multiples of 1/8 with random signs, in random order (no ties for TopK)."""
    g = torch.Generator().manual_seed(0)
    mags = torch.stack([torch.randperm(d, generator=g) + 1 for _ in range(n)]).to(dtype) / 8
    signs = torch.randint(0, 2, (n, d), generator=g).to(dtype) * 2 - 1
    return mags * signs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", cp.compressors.names())
def test_payload_bytes_are_the_same_on_every_device(name, device):
    n, d, seed = 6, 100, 3
    C = cp.compressors.make(name)
    X = _dyadic(n, d, torch.float64)
    expected = C.encode(X, seed)
    assert C.encode(X.to(device), seed) == expected
    part = torch.tensor([4, 1])  # a process holding clients 4 and 1 of the 6
    assert C.encode(X[part].to(device), seed, clients=part, n=n) == [expected[4], expected[1]]
    X_hat, bits = C.apply(X.to(device), seed)
    assert X_hat.device.type == device
    reference, _ = C.apply(X, seed)
    torch.testing.assert_close(X_hat.cpu(), reference, rtol=1e-12, atol=1e-12)
    assert torch.equal(bits.cpu(), torch.tensor([8 * len(p) for p in expected]))
