"""Intra-op thread control for the local timings."""

from __future__ import annotations

from typing import Any

import torch

from commpress.integrations.advise._checks import _check_int


class _threads:
    """Run a block with ``n`` intra-op threads (None: unchanged), restoring the setting after."""

    def __init__(self, n: int | None) -> None:
        self.n = n

    def __enter__(self) -> None:
        self.saved = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(_check_int("threads", self.n, 1))

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.saved)
