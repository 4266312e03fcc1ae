"""Per-bucket memory of the stateful DDP hooks, robust to DDP's bucket rebuilds.

A bucket is described by its *signature*: the ``(key, numel)`` of its parameters in the order
the hook compresses them. ``key`` is the parameter's position in ``model.parameters()`` when the
hook state is bound to the model, else ``None``. Memory tensors (one per named slot: the EF
residual, EF21's estimator and mean, ...) are kept per bucket index together with the signature
they were laid out for. When a bucket arrives with another signature:

- with keys (bound state): the memory of every bucket that shares a parameter with it is split
  into per-parameter pieces (the *pool*) and the new bucket takes its parameters' pieces back,
  zeros for parameters never seen: nothing is lost when DDP regroups parameters;
- without keys: the bucket's memory restarts at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

Signature = tuple[tuple[int | None, int], ...]


def has_keys(signature: Signature) -> bool:
    return all(key is not None for key, _ in signature)


@dataclass
class BucketMemory:
    """Named memory tensors per bucket index, with the signature each is laid out for.

    Attributes:
        names: the slot names (e.g. ``("estimates", "averages")``).
        tensors: ``tensors[name][bucket_index]`` a flat tensor of the bucket's size.
        layouts: ``layouts[bucket_index]`` the signature of the bucket's tensors.
        pool: ``pool[name][key]`` pieces of parameters whose bucket was regrouped.
    """

    names: tuple[str, ...]
    tensors: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)
    layouts: dict[int, Signature] = field(default_factory=dict)
    pool: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.names:
            self.tensors.setdefault(name, {})
            self.pool.setdefault(name, {})

    def holds(self, index: int, signature: Signature) -> bool:
        """True when bucket ``index`` has memory laid out for ``signature``."""
        return self.layouts.get(index) == signature and all(index in self.tensors[n] for n in self.names)

    def get(self, index: int, signature: Signature, like: torch.Tensor) -> tuple[dict[str, torch.Tensor], bool]:
        """The memory of bucket ``index`` (dtype and device of ``like``) and whether it was (re)laid out."""
        fresh = not self.holds(index, signature)
        if fresh:
            self._relayout(index, signature, like)
        out = {}
        for name in self.names:
            held = self.tensors[name][index]
            if held.dtype != like.dtype or held.device != like.device:
                held = self.tensors[name][index] = held.to(dtype=like.dtype, device=like.device)
            out[name] = held
        return out, fresh

    def set(self, index: int, signature: Signature, values: dict[str, torch.Tensor]) -> None:
        """Replace bucket ``index``'s memory (one tensor per name)."""
        self._dissolve(index, signature)
        for name in self.names:
            self.tensors[name][index] = values[name]
        self.layouts[index] = signature

    def forget_after(self, last_index: int) -> None:
        """DDP now has buckets 0..last_index only: release the memory of the others."""
        for index in [i for i in self.layouts if i > last_index]:
            self._release(index)
        for name in self.names:
            for index in [i for i in self.tensors[name] if i > last_index]:
                del self.tensors[name][index]

    # ------------------------------------------------------------------ internals
    def _relayout(self, index: int, signature: Signature, like: torch.Tensor) -> None:
        self._dissolve(index, signature)
        for name in self.names:
            pool = self.pool[name]
            pieces = [
                pool.pop(key) if key is not None and key in pool and pool[key].numel() == numel
                else torch.zeros(numel, dtype=like.dtype, device=like.device)
                for key, numel in signature
            ]
            flat = torch.cat([p.to(dtype=like.dtype, device=like.device) for p in pieces]) if pieces else like.new_zeros(0)
            self.tensors[name][index] = flat
        self.layouts[index] = signature

    def _dissolve(self, index: int, signature: Signature) -> None:
        """Release bucket ``index`` and every bucket sharing a parameter with ``signature`` into the pool."""
        keys = {key for key, _ in signature if key is not None}
        for other in list(self.layouts):
            if other == index or keys & {key for key, _ in self.layouts[other] if key is not None}:
                self._release(other)
        for name in self.names:
            self.tensors[name].pop(index, None)

    def _release(self, index: int) -> None:
        signature = self.layouts.pop(index)
        for name in self.names:
            flat = self.tensors[name].pop(index, None)
            if flat is None or not has_keys(signature) or flat.numel() != sum(n for _, n in signature):
                continue
            for (key, _), piece in zip(signature, flat.split([n for _, n in signature])):
                self.pool[name][key] = piece.clone()
