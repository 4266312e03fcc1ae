"""Built-in models to time a training step on: the example's small CNN, and MLPs of a given size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from commpress.errors import ConfigError
from commpress.integrations.advise._checks import _check_int


class _SmallCNN(nn.Module):
    """The small CNN of ``examples/ddp_mnist.py`` on 28x28 images (about 9k parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp(sizes: Sequence[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_model(kind: str = "cnn", *, hidden: int = 1024, params: int | None = None,
               batch_size: int = 32, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """A model and one batch ``(x, y)`` (10 classes) to time a training step on.

    ``kind="cnn"``: the small CNN on 28x28 images; ``kind="mlp"``: 784 -> hidden -> hidden -> 10;
    ``params=N``: an MLP 784 -> h -> h -> 10 with h chosen so that it has about N parameters
    (a stand-in for a user's model of N parameters). Weights and data come from a generator
    seeded with ``seed``; the global RNG is not touched.
    """
    if params is not None:
        params = _check_int("model params", params, 1000)
        # 784 h + h^2 + 10 h weights, 2 h + 10 biases
        h = max(1, round((-796 + math.sqrt(796**2 + 4 * max(params - 10, 1))) / 2))
        sizes = [784, h, h, 10]
        kind = "mlp"
    elif kind == "mlp":
        sizes = [784, _check_int("hidden", hidden, 1), hidden, 10]
    elif kind != "cnn":
        raise ConfigError(f"unknown model {kind!r}; use 'cnn', 'mlp' (with hidden=) or params=N.")
    batch_size = _check_int("batch size", batch_size, 1)
    with torch.device("meta"):
        model = _SmallCNN() if kind == "cnn" else _mlp(sizes)
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.normal_(0.0, 1.0 / math.sqrt(max(fan_in, 1)), generator=g)
    shape = (batch_size, 1, 28, 28) if kind == "cnn" else (batch_size, 784)
    x = torch.randn(shape, generator=g)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    return model, (x, y)
