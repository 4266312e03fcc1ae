"""Dense reference of the DRIVE/EDEN rotations, from the same keyed randomness (independent of the FWHT)."""

import math

import torch

from commpress.compressors._hadamard import hadamard_matrix
from commpress.compressors._rotation import haar, padded_dim, rademacher


def rotated(x_rows: torch.Tensor, seed: int, tag: str, rotation: str) -> torch.Tensor:
    """R(x') of every row (client i = row i of a full batch): Q x (Haar) or H D x' / sqrt(d') (Hadamard)."""
    T, d = x_rows.shape
    if rotation == "haar":
        Q = haar(seed, tag, T, d, None, shared=False)
        return (Q @ x_rows.unsqueeze(-1)).squeeze(-1)
    dp = padded_dim(d)
    eps = rademacher(seed, tag, T, dp, None, shared=False, dtype=torch.float64)
    Xp = torch.nn.functional.pad(x_rows, (0, dp - d))
    return (Xp * eps) @ hadamard_matrix(dp.bit_length() - 1) / math.sqrt(dp)
