"""Keyed randomness: every random draw is a pure function of (seed, tag, client).

Spec: ``shared/spec/compressors.md`` §0.3. A *stream* is identified by (seed, tag, c) with
``c = -1`` for the shared stream of the round and ``c = i`` for client ``i``'s private stream.
The key is

    k = SM(SM(SM(seed) xor FNV1a64(tag)) xor (c + 1))        (all arithmetic mod 2^64)

with SM the splitmix64 finaliser, and a CPU ``torch.Generator`` is seeded with ``k mod 2^63``.
Draws are made on the CPU and moved to the device afterwards (CUDA generators give other
numbers, which would break simulator == distributed equality).

Private draws for a *batch* of clients are made as one matrix: ``private_rand(seed, tag, n,
shape, clients)`` draws the ``(n, *shape)`` matrix from the stream ``(seed, tag, -2)`` and returns
the rows ``clients``. Row ``i`` is a pure function of (seed, tag, n, shape, i), never of the
position of a client in the batch, so any process computes exactly its own clients' draws.
It costs one vectorised draw for the whole population (no Python loop over clients); a process
that holds only a few of many clients pays for all n rows, which is cheap next to the
gradient it compresses.
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1
SEED_LIMIT = 1 << 63


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _fnv1a64(tag: str) -> int:
    h = 0xCBF29CE484222325
    for byte in tag.encode("ascii"):
        h = ((h ^ byte) * 0x100000001B3) & _MASK64
    return h


def stream_key(seed: int, tag: str, client: int = -1) -> int:
    """The 63-bit generator seed of stream (seed, tag, client); client -1 is the shared stream."""
    k = _splitmix64(_splitmix64(_splitmix64(int(seed) & _MASK64) ^ _fnv1a64(tag)) ^ ((client + 1) & _MASK64))
    return k % SEED_LIMIT


def derive_seed(seed: int, *parts: int | str) -> int:
    """A new round seed from a base seed and labels (e.g. the round number): a pure function."""
    k = int(seed) & _MASK64
    for part in parts:
        mixed = _fnv1a64(part) if isinstance(part, str) else (int(part) & _MASK64)
        k = _splitmix64(k ^ mixed)
    return k % SEED_LIMIT


def generator(seed: int, tag: str, client: int = -1) -> torch.Generator:
    """A CPU generator for stream (seed, tag, client)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_key(seed, tag, client))
    return g


def shared_generator(seed: int, tag: str) -> torch.Generator:
    """The shared stream of the round: identical on every process."""
    return generator(seed, tag, -1)


def private_rand(
    seed: int,
    tag: str,
    n: int,
    shape: tuple[int, ...],
    clients: torch.Tensor | None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Uniform [0, 1) draws, row i = client i's private draws of the round.

    Returns ``(len(clients), *shape)`` (or ``(n, *shape)`` when ``clients`` is None), on the CPU.
    """
    g = generator(seed, tag, -2)
    full = torch.rand((n, *shape), generator=g, dtype=dtype)
    return full if clients is None else full[clients]


def private_randint(
    seed: int, tag: str, n: int, high: int, shape: tuple[int, ...], clients: torch.Tensor | None
) -> torch.Tensor:
    """Integers in [0, high), row i = client i's private draws (see :func:`private_rand`)."""
    g = generator(seed, tag, -2)
    full = torch.randint(0, high, (n, *shape), generator=g)
    return full if clients is None else full[clients]


def private_randperm_topk(
    seed: int, tag: str, n: int, d: int, k: int, clients: torch.Tensor | None
) -> torch.Tensor:
    """For each client a uniformly random k-subset of range(d), sorted: ``(rows, k)`` int64.

    Drawn as the k smallest of d private uniforms (a uniform random subset), vectorised.
    """
    u = private_rand(seed, tag, n, (d,), clients, dtype=torch.float32)
    return torch.topk(u, k, dim=1, largest=False, sorted=False).indices.sort(dim=1).values
