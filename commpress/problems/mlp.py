"""A small multilayer perceptron; the flat parameter vector is x, clients hold data shards."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from commpress._checks import check_choice, check_dtype, check_float, check_int, check_seed
from commpress._rng import shared_generator
from commpress.errors import ConfigError, InputError
from commpress.problems._data import data_arrays
from commpress.problems._splits import SPLITS, partition
from commpress.problems.base import Problem, Smoothness
from commpress.problems.registry import register

_ACTIVATIONS = {"tanh": torch.tanh, "softplus": F.softplus, "sigmoid": torch.sigmoid, "gelu": F.gelu}


def _load_images(owner: str, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(N, p)`` float64 in [0, 1] (images) or as read (LibSVM), labels ``(N,)`` 0..C-1."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return torch.from_numpy(digits.data / 16.0), torch.from_numpy(digits.target).long()
    if dataset == "mnist":
        from commpress.datasets import load_mnist

        images, labels = load_mnist()
        flat = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
        return torch.from_numpy(flat), torch.from_numpy(labels.astype(np.int64))
    from commpress import datasets

    X, y = datasets.load(dataset)
    return torch.from_numpy(X.toarray()), torch.from_numpy(_class_codes(owner, y, f"dataset {dataset!r}")[1])


def _class_codes(owner: str, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct label values, sorted, and each label's code 0..C-1 (its rank among them)."""
    values, codes = np.unique(np.asarray(y), return_inverse=True)
    if values.size < 2:
        raise ConfigError(f"{owner}: {what} has a single label ({values.tolist()}); a classifier needs two or more.")
    return values, codes.reshape(-1).astype(np.int64)


def _features_and_classes(owner: str, dataset: str, data: Any, default: str,
                          dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Rows ``(N, p)`` float64 and class codes ``(N,)`` of ``dataset`` or of ``data=(A, b)``, and
    what to record of the source."""
    if data is None:
        X, y = _load_images(owner, dataset)
        return X, y, dict(dataset=dataset)
    if dataset != default:
        raise ConfigError(
            f"{owner} takes dataset= (a name or a path) or data=(A, b) (arrays), not both; got dataset={dataset!r} "
            f"and data. Drop one."
        )
    X, b = data_arrays(owner, data, dtype)  # refuses values that overflow dtype
    values, codes = _class_codes(owner, b.numpy(), "b in data=(A, b)")
    return X.double(), torch.from_numpy(codes), dict(dataset="arrays", labels=values.tolist())


@register("mlp")
class MLP(Problem):
    r"""Softmax classification with a small MLP; x is the flat parameter vector.

    .. math::
        f_i(x) = \frac1{m_i}\sum_{j<m_i}\mathrm{CE}\big(\mathrm{net}_x(a_{ij}), y_{ij}\big) + \frac{\lambda_2}2\|x\|^2,
        \qquad \mathrm{net}_x = W_L\circ\sigma\circ\dots\circ\sigma\circ W_1\ (\text{affine } W_l).

    Parameter layout of x: for each layer ``W`` ``(in, out)`` row-major then ``b`` ``(out,)``
    (:meth:`unflatten`). Start: torch.nn.Linear's default law, :math:`U(\pm1/\sqrt{\mathrm{fan\_in}})`,
    from stream ``(seed, "problems/mlp/init")``. All clients are evaluated in one batched
    forward with per-client parameters (``bmm``), and ``client_grads`` is one backward pass.

    Smoothness (``exact=False``): **estimates, not bounds** — the spectral norms of the client
    Hessians and of the mean Hessian at :meth:`x0`, by 30 steps of batched power iteration on
    Hessian-vector products (:meth:`local_smoothness` at any point); :math:`L_+` is reported as
    :math:`L_{QM}` of those, :math:`L_\pm` as :math:`L_+`. A smooth activation (tanh by default)
    keeps the loss twice differentiable; ReLU is not offered for that reason.

    Args:
        dataset: ``"digits"`` (default: scikit-learn's bundled 8x8 digits, 1797 x 64, 10 classes,
            no download, pixels/16), ``"mnist"`` (the t10k IDX files, pixels/255), or a LibSVM
            name / path, or an ``.npz`` path of arrays (labels coded 0..C-1 in sorted order).
        data: ``(A, b)`` instead of a dataset (Python only; a config names an ``.npz`` file): ``A``
            ``(m, p)`` features, ``b`` ``(m,)`` class labels, two or more distinct values, coded
            0..C-1 in sorted order (``describe()["labels"]`` lists them). NumPy, SciPy sparse or
            torch. With ``data``, ``dataset`` must be left at its default.
        n_clients: n, 1 <= n <= N.
        hidden: hidden layer widths, e.g. ``(32,)``; ``()`` gives softmax regression.
        activation: ``"tanh"``, ``"softplus"``, ``"sigmoid"`` or ``"gelu"``.
        l2: :math:`\lambda_2 \ge 0`.
        split: ``"contiguous"``, ``"shuffled"`` or ``"label_skew"``.
        seed, dtype: as the other problems.
    """

    def __init__(
        self,
        dataset: str = "digits",
        n_clients: int = 10,
        hidden: Any = (32,),
        activation: str = "tanh",
        l2: float = 1e-4,
        split: str = "contiguous",
        seed: int = 0,
        dtype: Any = "float64",
        data: Any = None,
    ) -> None:
        owner = "mlp"
        n = check_int("n_clients", n_clients, owner)
        if isinstance(hidden, int):
            hidden = (hidden,)
        try:
            hidden = tuple(check_int("hidden width", h, owner) for h in hidden)
        except TypeError:
            raise ConfigError(f"{owner} needs hidden as a tuple of widths, e.g. (32,); got {hidden!r}.") from None
        self.activation = check_choice("activation", activation, owner, tuple(_ACTIVATIONS))
        self._act = _ACTIVATIONS[self.activation]
        self.l2 = check_float("l2", l2, owner, low=0.0, finite=True)
        split = check_choice("split", split, owner, SPLITS)
        self.seed = check_seed(seed, owner)
        self.dtype = check_dtype(dtype, owner)
        X, y, source = _features_and_classes(owner, dataset, data, "digits", self.dtype)
        self.classes = int(y.max()) + 1
        data = partition(X.to(self.dtype), y, n, split, self.seed, owner)
        self.data = data
        self.n = n
        self.sizes = (int(X.shape[1]), *hidden, self.classes)
        self.layers = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.d = sum(i * o + o for i, o in self.layers)
        self._weights = data.mask.to(self.dtype) / data.counts[:, None].to(self.dtype)
        self.params = dict(source, n_clients=n, hidden=hidden, activation=self.activation, l2=self.l2,
                           split=split, seed=self.seed)
        self._cache: dict[str, Any] = {}

    # ---- parameters
    def unflatten(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(W (…, in, out), b (…, out)), …]`` views of ``x`` ``(d,)`` or ``(rows, d)``."""
        lead = x.shape[:-1]
        out, off = [], 0
        for i, o in self.layers:
            W = x[..., off:off + i * o].reshape(*lead, i, o)
            off += i * o
            out.append((W, x[..., off:off + o]))
            off += o
        return out

    def x0(self) -> torch.Tensor:
        g = shared_generator(self.seed, "problems/mlp/init")
        parts = []
        for i, o in self.layers:
            bound = 1.0 / math.sqrt(i)
            parts.append((2 * torch.rand(i * o + o, generator=g, dtype=torch.float64) - 1) * bound)
        return torch.cat(parts).to(device=self.device, dtype=self.dtype)  # drawn on the CPU: the same on every device

    # ---- forward
    def _logits(self, X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        """Logits ``(r, m, C)`` of rows ``X`` ``(r, m, p)`` under ``P`` ``(d,)`` or ``(r, d)``."""
        h = X
        layers = self.unflatten(P)
        for k, (W, b) in enumerate(layers):
            if P.dim() == 1:
                h = h @ W + b
            else:
                h = torch.baddbmm(b[:, None, :], h, W)
            if k < len(layers) - 1:
                h = self._act(h)
        return h

    def _sample_losses(self, X: torch.Tensor, y: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        logits = self._logits(X, P)
        return F.cross_entropy(logits.reshape(-1, self.classes), y.reshape(-1), reduction="none").reshape(y.shape)

    def _block(self, rows: torch.Tensor | None):
        if rows is None:
            return self.data.features, self.data.targets, self._weights
        return self.data.features[rows], self.data.targets[rows], self._weights[rows]

    def _losses(self, P: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        X, y, w = self._block(rows)
        return (self._sample_losses(X, y, P) * w).sum(-1) + 0.5 * self.l2 * P.pow(2).sum(-1)

    # ---- oracles
    # Every client's row is computed and the asked rows selected (see Problem._full_point): a
    # subset is bit-identical to the same rows of the full call.
    def client_losses(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        rows = self._rows(clients)
        x = self._full_point(self._point(x, self.n if rows is None else rows.numel()), rows)
        with torch.no_grad():
            out = self._losses(x, None)
        return out if rows is None else out[rows]

    def client_grads(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        rows = self._rows(clients)
        x = self._full_point(self._point(x, self.n if rows is None else rows.numel()), rows)
        P = (x.expand(self.n, self.d) if x.dim() == 1 else x).detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (G,) = torch.autograd.grad(self._losses(P, None).sum(), P)
        return G if rows is None else G[rows]

    def num_samples(self) -> torch.Tensor:
        return self.data.counts.clone()

    def sample_grads(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        rows = self._rows(clients)
        x = self._full_point(self._point(x, self.n if rows is None else rows.numel()), rows)
        index = self._index(index, rows)
        idx = index[:, None] if index.dim() == 1 else index
        if rows is not None:
            full = torch.zeros((self.n, idx.shape[1]), dtype=torch.int64, device=idx.device)
            full[rows] = idx
            idx = full
        n, k = self.n, idx.shape[1]
        ar = torch.arange(n, device=idx.device)[:, None]
        X, y = self.data.features, self.data.targets
        Xs, ys = X[ar, idx].reshape(n * k, 1, -1), y[ar, idx].reshape(n * k, 1)
        base = x.expand(n, self.d) if x.dim() == 1 else x
        P = base[:, None, :].expand(n, k, self.d).reshape(n * k, self.d).detach().clone().requires_grad_(True)
        with torch.enable_grad():
            losses = self._sample_losses(Xs, ys, P).reshape(-1) + 0.5 * self.l2 * P.pow(2).sum(-1)
            (G,) = torch.autograd.grad(losses.sum(), P)
        G = G.reshape(n, k, self.d)
        G = G if rows is None else G[rows]
        return G[:, 0] if index.dim() == 1 else G

    def accuracy(self, x: torch.Tensor) -> float:
        """Fraction of all rows classified correctly at ``x`` ``(d,)``."""
        x = self._point(x, self.n)
        if x.dim() != 1:
            raise InputError("accuracy expects one point x of shape (d,).")
        with torch.no_grad():
            pred = self._logits(self.data.features, x).argmax(-1)
        return float(((pred == self.data.targets) & self.data.mask).sum() / self.data.mask.sum())

    # ---- smoothness estimate
    def local_smoothness(self, x: torch.Tensor, iters: int = 30) -> tuple[torch.Tensor, float]:
        """Power-iteration estimates of ``(||∇²f_i(x)||)_i`` ``(n,)`` and ``||∇²f(x)||``."""
        x = self._point(x, self.n).detach()
        g = shared_generator(self.seed, "problems/mlp/power")
        V = torch.randn((self.n + 1, self.d), generator=g, dtype=torch.float64).to(device=x.device, dtype=self.dtype)
        V = V / V.norm(dim=1, keepdim=True)
        P = x.expand(self.n, self.d).clone().requires_grad_(True)
        p = x.clone().requires_grad_(True)
        with torch.enable_grad():
            (G,) = torch.autograd.grad(self._losses(P, None).sum(), P, create_graph=True)
            (g_mean,) = torch.autograd.grad(self._losses(p, None).mean(), p, create_graph=True)
            est = torch.zeros(self.n + 1, dtype=self.dtype, device=x.device)
            for _ in range(iters):
                (HV,) = torch.autograd.grad((G * V[:-1]).sum(), P, retain_graph=True)
                (hv,) = torch.autograd.grad((g_mean * V[-1]).sum(), p, retain_graph=True)
                W = torch.cat([HV, hv[None]]).detach()
                est = W.norm(dim=1)
                V = W / est.clamp_min(torch.finfo(self.dtype).tiny)[:, None]
        return est[:-1].to(device="cpu", dtype=torch.float64), float(est[-1])

    def smoothness(self) -> Smoothness:
        if "smooth" not in self._cache:
            L_i, L_minus = self.local_smoothness(self.x0())
            L_qm = float(L_i.pow(2).mean().sqrt())
            self._cache["smooth"] = Smoothness(
                L_i=L_i, L_minus=L_minus, L_plus=L_qm, L_pm=L_qm, mu=0.0, exact=False,
                notes="estimates, not bounds: Hessian spectral norms at x0 by power iteration; "
                      "L_plus reported as L_QM, L_pm as L_plus",
            )
        return self._cache["smooth"]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(sizes=self.sizes, samples=int(self.data.counts.sum()))
        return out
