"""A small convolutional network on square grey images; x is the flat parameter vector."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from commpress._checks import check_choice, check_dtype, check_float, check_int, check_seed
from commpress._rng import shared_generator
from commpress.errors import ConfigError, InputError
from commpress.problems._splits import SPLITS, partition
from commpress.problems.mlp import _ACTIVATIONS, MLP, _features_and_classes
from commpress.problems.registry import register

_KERNEL, _STRIDE, _PAD, _POOL = 5, 2, 2, 2


def _conv_side(side: int) -> int:
    return (side + 2 * _PAD - _KERNEL) // _STRIDE + 1


@register("cnn")
class CNN(MLP):
    r"""Softmax classification with a small CNN; x is the flat parameter vector.

    .. math::
        f_i(x) = \frac1{m_i}\sum_{j<m_i}\mathrm{CE}\big(\mathrm{net}_x(a_{ij}), y_{ij}\big) + \frac{\lambda_2}2\|x\|^2,

        \mathrm{net}_x = W_3\circ\mathrm{flatten}\circ\mathrm{avgpool}_2\circ\sigma\circ
        \mathrm{conv}_2\circ\sigma\circ\mathrm{conv}_1,

    with :math:`\mathrm{conv}_1` (1 -> c_1 channels) and :math:`\mathrm{conv}_2` (c_1 -> c_2) 5x5 kernels,
    stride 2, padding 2, a 2x2 average pool and an affine output layer :math:`W_3`. On 28x28 MNIST
    with the default ``channels=(8, 16)``: 28 -> 14 -> 7 -> 3, d = 208 + 3216 + 1450 = 4874.

    Parameter layout of x: ``conv1.weight (c1, 1, 5, 5)``, ``conv1.bias``, ``conv2.weight (c2, c1, 5, 5)``,
    ``conv2.bias``, ``fc.weight (feat, C)`` row-major (as :class:`~commpress.problems.mlp.MLP`'s layers),
    ``fc.bias`` (:meth:`unflatten`). Start: torch.nn's default law :math:`U(\pm1/\sqrt{\mathrm{fan\_in}})`
    from stream ``(seed, "problems/cnn/init")``.

    Batching is :class:`~commpress.problems.mlp.MLP`'s (every oracle, the accuracy and the smoothness
    estimate are inherited): one forward for all clients, per-client parameters ``(rows, d)`` as a
    grouped convolution (``groups = rows``) and a batched output layer, one backward pass. Minibatch
    gradients (:meth:`batch_grads`) run one grouped forward over the k samples of every client
    instead of k per-sample copies of the parameters.

    Held-out data: ``holdout`` of the rows (a seeded random choice, stream
    ``(seed, "problems/cnn/holdout")``) are kept out of the clients for :meth:`test_accuracy`;
    ``samples`` keeps only a seeded random subset of the dataset (small CPU runs).

    Smoothness: the inherited estimates (``exact=False``, power iteration on Hessian-vector products
    at :meth:`x0`), not bounds.

    Args:
        dataset: ``"mnist"`` (default; the t10k IDX files, pixels/255) or ``"digits"`` (scikit-learn's
            8x8 digits, no download).
        data: ``(A, b)`` instead of a dataset (Python only): ``A`` ``(m, side**2)`` flattened square
            grey images, ``b`` ``(m,)`` class labels, as :class:`~commpress.problems.mlp.MLP`.
        n_clients: n.
        channels: ``(c1, c2)``, default ``(8, 16)``.
        activation: ``"tanh"`` (default), ``"softplus"``, ``"sigmoid"`` or ``"gelu"``.
        l2: :math:`\lambda_2 \ge 0`.
        split: ``"contiguous"``, ``"shuffled"`` (default) or ``"label_skew"``.
        holdout: fraction of the rows held out for testing, in [0, 1) (default 0.2).
        samples: use only this many rows of the dataset (None: all).
        seed, dtype: as the other problems (default dtype float32: image runs are long).

    References:
        LeCun et al., Gradient-based learning applied to document recognition, 1998 (a LeNet-style
        network); the NEOLITHIC talk's image experiments (CIFAR-10, ResNets), scaled down.
    """

    def __init__(
        self,
        dataset: str = "mnist",
        n_clients: int = 8,
        channels: Any = (8, 16),
        activation: str = "tanh",
        l2: float = 1e-4,
        split: str = "shuffled",
        holdout: float = 0.2,
        samples: int | None = None,
        seed: int = 0,
        dtype: Any = "float32",
        data: Any = None,
    ) -> None:
        owner = "cnn"
        n = check_int("n_clients", n_clients, owner)
        if data is None and dataset not in ("mnist", "digits"):
            raise ConfigError(f"{owner} needs dataset 'mnist' or 'digits' (square grey images); got {dataset!r}.")
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) != 2:
            raise ConfigError(f"{owner} needs channels as two counts (c1, c2), e.g. (8, 16); got {channels!r}.")
        c1, c2 = (check_int("channel count", c, owner) for c in channels)
        self.activation = check_choice("activation", activation, owner, tuple(_ACTIVATIONS))
        self._act = _ACTIVATIONS[self.activation]
        self.l2 = check_float("l2", l2, owner, low=0.0, finite=True)
        split = check_choice("split", split, owner, SPLITS)
        self.holdout = check_float("holdout", holdout, owner, low=0.0, finite=True)
        if self.holdout >= 1.0:
            raise ConfigError(f"{owner} needs holdout in [0, 1) (a fraction of the rows); got holdout={holdout}.")
        self.seed = check_seed(seed, owner)
        self.dtype = check_dtype(dtype, owner)
        X, y, source = _features_and_classes(owner, dataset, data, "mnist", self.dtype)
        what = "data=(A, b)" if data is not None else repr(dataset)
        N = int(X.shape[0])
        if samples is not None:
            samples = check_int("samples", samples, owner)
            if samples > N:
                raise ConfigError(f"{owner}: samples={samples} exceeds the {N} rows of {what}; use samples <= {N}.")
        keep = N if samples is None else samples
        n_test = math.floor(keep * self.holdout)
        if keep - n_test < n:
            raise ConfigError(
                f"{owner}: {keep - n_test} training rows for n_clients={n}; every client needs at least one. "
                "Use more samples, a smaller holdout or fewer clients."
            )
        order = torch.randperm(N, generator=shared_generator(self.seed, "problems/cnn/holdout"))[:keep]
        test, train = order[keep - n_test:], order[:keep - n_test]
        train = train.sort().values  # file order within the training rows ("contiguous" keeps its meaning)
        self.side = math.isqrt(int(X.shape[1]))
        if self.side * self.side != X.shape[1]:
            raise ConfigError(f"{owner} needs square images; {what} rows have {X.shape[1]} pixels. Flatten each "
                              f"side x side image into a row of side**2 values.")
        self.classes = int(y.max()) + 1
        self.test_features = X[test].to(self.dtype)
        self.test_targets = y[test]
        self.data = partition(X[train].to(self.dtype), y[train], n, split, self.seed, owner)
        self.n = n
        self.channels = (c1, c2)
        pooled = _conv_side(_conv_side(self.side)) // _POOL
        if pooled < 1:
            raise ConfigError(f"{owner}: {self.side}x{self.side} images are too small for two stride-2 convolutions "
                              "and a 2x2 pool.")
        self.feat = c2 * pooled * pooled
        self.shapes = [(c1, 1, _KERNEL, _KERNEL), (c1,), (c2, c1, _KERNEL, _KERNEL), (c2,),
                       (self.feat, self.classes), (self.classes,)]
        self.d = sum(math.prod(s) for s in self.shapes)
        self.sizes = (self.side * self.side, c1, c2, self.classes)
        self.layers = []  # the MLP's affine layers are not used: unflatten/_logits are overridden
        self._weights = self.data.mask.to(self.dtype) / self.data.counts[:, None].to(self.dtype)
        self.params = dict(source, n_clients=n, channels=(c1, c2), activation=self.activation, l2=self.l2,
                           split=split, holdout=self.holdout, samples=samples, seed=self.seed)
        self._cache: dict[str, Any] = {}

    # ---- parameters
    def unflatten(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[conv1.w, conv1.b, conv2.w, conv2.b, fc.w, fc.b]`` views of ``x`` ``(d,)`` or ``(rows, d)``."""
        lead = x.shape[:-1]
        out, off = [], 0
        for s in self.shapes:
            size = math.prod(s)
            out.append(x[..., off:off + size].reshape(*lead, *s))
            off += size
        return out

    def x0(self) -> torch.Tensor:
        g = shared_generator(self.seed, "problems/cnn/init")
        c1, c2 = self.channels
        fans = (_KERNEL * _KERNEL, _KERNEL * _KERNEL * c1, self.feat)
        parts = []
        for k, fan in enumerate(fans):
            size = math.prod(self.shapes[2 * k]) + math.prod(self.shapes[2 * k + 1])
            parts.append((2 * torch.rand(size, generator=g, dtype=torch.float64) - 1) / math.sqrt(fan))
        return torch.cat(parts).to(device=self.device, dtype=self.dtype)  # drawn on the CPU: the same on every device

    # ---- forward
    def _logits(self, X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        """Logits ``(r, m, C)`` of rows ``X`` ``(r, m, side*side)`` under ``P`` ``(d,)`` or ``(r, d)``."""
        r, m = X.shape[0], X.shape[1]
        s = self.side
        w1, b1, w2, b2, w3, b3 = self.unflatten(P)
        if P.dim() == 1:
            h = X.reshape(r * m, 1, s, s)
            h = self._act(F.conv2d(h, w1, b1, stride=_STRIDE, padding=_PAD))
            h = self._act(F.conv2d(h, w2, b2, stride=_STRIDE, padding=_PAD))
            h = F.avg_pool2d(h, _POOL).reshape(r, m, self.feat)
            return h @ w3 + b3
        # per-client parameters: the clients ride the channel axis of one grouped convolution
        h = X.reshape(r, m, s, s).transpose(0, 1)  # (m, r, s, s)
        h = self._act(F.conv2d(h, w1.reshape(-1, 1, _KERNEL, _KERNEL), b1.reshape(-1), stride=_STRIDE,
                               padding=_PAD, groups=r))
        h = self._act(F.conv2d(h, w2.reshape(-1, *self.shapes[2][1:]), b2.reshape(-1), stride=_STRIDE,
                               padding=_PAD, groups=r))
        h = F.avg_pool2d(h, _POOL)  # (m, r*c2, p, p)
        h = h.reshape(m, r, self.feat).transpose(0, 1)  # (r, m, feat), per client in (c2, p, p) order
        return torch.baddbmm(b3[:, None, :], h, w3)

    # ---- minibatches
    def batch_grads(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Average gradient over the samples ``index`` ``(rows, k)`` of every client: ``(rows, d)``.

        One grouped forward of the k samples of every client (all clients computed, the asked rows
        selected, as every oracle here); equals ``sample_grads(x, index).mean(1)``.
        """
        rows = self._rows(clients)
        if index.dim() != 2:
            raise InputError(f"batch_grads expects index of shape (rows, k); got {tuple(index.shape)}.")
        x = self._full_point(self._point(x, self.n if rows is None else rows.numel()), rows)
        index = self._index(index, rows)
        if rows is not None:
            full = torch.zeros((self.n, index.shape[1]), dtype=torch.int64, device=index.device)
            full[rows] = index
            index = full
        ar = torch.arange(self.n, device=index.device)[:, None]
        Xs, ys = self.data.features[ar, index], self.data.targets[ar, index]
        P = (x.expand(self.n, self.d) if x.dim() == 1 else x).detach().clone().requires_grad_(True)
        with torch.enable_grad():
            losses = self._sample_losses(Xs, ys, P).mean(-1) + 0.5 * self.l2 * P.pow(2).sum(-1)
            (G,) = torch.autograd.grad(losses.sum(), P)
        return G if rows is None else G[rows]

    # ---- held-out data
    def test_accuracy(self, x: torch.Tensor) -> float:
        """Fraction of the held-out rows classified correctly at ``x`` ``(d,)``."""
        if self.test_targets.numel() == 0:
            raise ConfigError("cnn: no held-out rows (holdout=0); build the problem with holdout > 0, e.g. 0.2.")
        x = self._point(x, self.n)
        if x.dim() != 1:
            raise InputError("test_accuracy expects one point x of shape (d,).")
        with torch.no_grad():
            pred = self._logits(self.test_features[None], x)[0].argmax(-1)
        return float((pred == self.test_targets).double().mean())

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(test_samples=int(self.test_targets.numel()))
        return out
