"""The distributed problem interface: f(x) = (1/n) sum_i f_i(x).

Every problem holds n clients in one object and answers for all of them in one batched call
(``client_grads(x)`` is ``(n, d)``, no Python loop over clients). Finite-sum problems (each
f_i an average over m_i samples) also give per-sample and minibatch gradients for the
variance-reduced and stochastic methods. Smoothness constants are reported with a flag that
says whether they are exact or bounds.

Conventions shared by every oracle:

- ``x`` is either one point ``(d,)`` (all clients evaluated there) or one point per client
  ``(rows, d)`` (client ``i`` evaluated at ``x[i]``; what local-step and SAGA-type methods need).
- ``clients`` (keyword, optional): an int64 index of the clients to answer for (a process that
  holds only some clients); rows of the result follow it. Default: all ``n`` clients in order.
  The built-in problems compute every client's row and select (see :meth:`Problem._full_point`),
  so a subset's rows are bit-identical to the same rows of the full call; the tridiagonal
  quadratics compute only the requested rows, which is bit-identical too (elementwise per row).
- Results have the problem's ``dtype`` and live on the problem's ``device`` (:attr:`Problem.device`,
  moved with :meth:`Problem.to` or ``make(..., device=)``); inputs of another float dtype or on
  another device are converted. Seeded draws (starting points, sample indices, noise) are made on
  the CPU and moved, so they are the same on every device; constants (``smoothness()``) and the
  optimum are computed on the CPU (x* is then moved), so theoretical stepsizes do not depend on it.
- Finite sums: client ``i`` has ``m_i = num_samples()[i]`` samples numbered ``0..m_i-1``;
  ``f_i = (1/m_i) sum_j f_ij``. Index tensors are ``(rows,)`` (one sample per client) or
  ``(rows, k)`` (k samples per client).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from commpress._device import resolve_device
from commpress.errors import ConfigError, InputError, InputTypeError


@dataclass(frozen=True)
class Smoothness:
    """Smoothness constants (definitions: Szlendak et al., ICLR 2022; Panferov et al. 2024, Sec. 1).

    ``L_i``: per client, ``(n,)``. ``L_minus``: of f (GD's L). ``L_plus``: mean-square.
    ``L_pm``: Hessian variance L_±. ``mu``: strong convexity of f (0 if not known/none).
    ``exact``: True when every constant is the smallest one (quadratics); False when some are
    upper bounds (then ``notes`` says which).
    ``L_sample``: for finite sums, max over clients and samples of the smoothness constant of
    the single-sample loss f_ij (the L of VR-DIANA / SAGA theory), else None.
    ``weighted_fn``: w -> (L_{+,w}, L_{±,w}) where the problem knows them (see :meth:`weighted`).
    """

    L_i: torch.Tensor
    L_minus: float
    L_plus: float
    L_pm: float
    mu: float = 0.0
    exact: bool = True
    notes: str = ""
    L_sample: float | None = None
    weighted_fn: Callable[[torch.Tensor], tuple[float, float]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def L(self) -> float:
        return self.L_minus

    @property
    def L_max(self) -> float:
        return float(self.L_i.max())

    @property
    def L_am(self) -> float:
        return float(self.L_i.mean())

    @property
    def L_qm(self) -> float:
        return float(self.L_i.pow(2).mean().sqrt())

    def weighted(self, w: torch.Tensor) -> tuple[float, float]:
        """(L_{+,w}, L_{±,w}) for weights w on the simplex (Tyurin et al. 2022; CQ paper Assumptions 7-8).

        Known exactly for quadratics; raises NotImplementedError for problems that do not
        know them.
        """
        if self.weighted_fn is None:
            raise NotImplementedError("this problem does not know its weighted smoothness constants")
        w = torch.as_tensor(w, dtype=torch.float64).reshape(-1)
        if w.numel() != self.L_i.numel() or not bool((w > 0).all()) or abs(float(w.sum()) - 1.0) > 1e-6:
            raise InputError(
                f"weights must be {self.L_i.numel()} positive numbers summing to 1; got shape "
                f"{tuple(w.shape)}, sum {float(w.sum()):.6g}. Normalise: w = w / w.sum()."
            )
        return self.weighted_fn(w / w.sum())  # exact simplex point (float32 inputs sum to 1 +- 1e-7)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "weighted_fn"}
        out["L_i"] = self.L_i.tolist()
        out.update(L_max=self.L_max, L_am=self.L_am, L_qm=self.L_qm)
        return out


class Problem:
    r"""Base class of distributed problems. Subclasses implement the batched oracles.

    **Write your own.** A subclass sets, and implements:

    - ``n`` (clients) and ``d`` (dimension), as attributes; ``dtype`` (default float64);
    - ``client_grads(x, *, clients=None)`` -> ``(rows, d)``: :math:`\nabla f_i` of every client,
      or of the clients listed in ``clients`` (an int64 index; rows in that order), at one point
      ``x`` ``(d,)`` or at one point per client ``(rows, d)`` (see the module conventions);
    - ``client_losses(x, *, clients=None)`` -> ``(rows,)``: :math:`f_i`, same conventions (the
      simulator records :math:`f(x^t)`);
    - ``smoothness()`` -> :class:`Smoothness`: the constants the theoretical stepsizes use
      (``L_i``, ``L_minus``, ``L_plus``, ``L_pm``; ``exact=False`` with a ``notes`` line when some
      are upper bounds). A method run with an explicit ``stepsize=`` may not need it.

    Inherited, override when you can do better: ``grad`` and ``loss`` (means over the clients),
    ``x0`` (zeros), ``optimum`` (None; return ``(f*, x*)`` and the history records
    :math:`\|x^t-x^\star\|^2`), ``describe`` (adds ``self.params`` if set). Finite sums add
    ``num_samples`` and ``sample_grads`` (the stochastic and variance-reduced methods use them).

    **Devices.** :attr:`device` is where the problem's tensors live (the device of its tensor
    attributes; the CPU when it has none); ``problem.to("cuda")`` returns a copy with every tensor
    attribute moved (tensors inside dicts, lists, tuples and dataclasses such as the client data
    included), and ``make(name, ..., device="cuda")`` builds it there. The oracles create what they
    need on ``self.device``, so one code path serves every device; a problem holding tensors
    elsewhere (inside closures, say) overrides :meth:`to`.

    A per-client quadratic :math:`f_i(x) = \tfrac12 x^\top A_ix - b_i^\top x` with given ``A``
    ``(n, d, d)`` and ``b`` ``(n, d)`` (``examples/my_problem.py`` runs it)::

        @cp.problems.register("my_quadratic")   # optional: cp.problems.make("my_quadratic", A=A, b=b)
        class MyQuadratic(cp.problems.Problem):
            def __init__(self, A, b):
                self.A, self.b = A.double(), b.double()
                self.n, self.d = b.shape

            def _Ax_b(self, x, clients):
                A, b = (self.A, self.b) if clients is None else (self.A[clients], self.b[clients])
                return (A @ x[..., None]).squeeze(-1), b   # x (d,) or (rows, d)

            def client_grads(self, x, *, clients=None):
                Ax, b = self._Ax_b(x, clients)
                return Ax - b

            def client_losses(self, x, *, clients=None):
                Ax, b = self._Ax_b(x, clients)
                return ((0.5 * Ax - b) * x).sum(-1)

            def smoothness(self):
                eig = torch.linalg.eigvalsh
                A_bar, A2_bar = self.A.mean(0), (self.A @ self.A).mean(0)
                return cp.problems.Smoothness(
                    L_i=eig(self.A)[:, -1], L_minus=float(eig(A_bar)[-1]),
                    L_plus=float(eig(A2_bar)[-1]) ** 0.5,
                    L_pm=float(eig(A2_bar - A_bar @ A_bar)[-1].clamp_min(0)) ** 0.5)

        hist = cp.simulate(MyQuadratic(A, b), "marina", compressor="cq", iterations=300)

    An instance goes straight to :func:`commpress.simulate` (and :func:`commpress.problems.make`
    returns it unchanged); registering a name is only needed to build it by name. For data, not
    code, the linear models take your arrays: ``make("logreg", data=(A, b), n_clients=8)``.
    """

    name: str = ""
    n: int
    d: int
    dtype: torch.dtype = torch.float64

    # ---- device
    @property
    def device(self) -> torch.device:
        """The device of the problem's tensors (set by :meth:`to`; else the device of its first
        tensor attribute; the CPU when it holds none)."""
        dev = self.__dict__.get("_device")
        if dev is not None:
            return dev
        for key, value in self.__dict__.items():
            t = None if key == "_cache" else _first_tensor(value)  # cached constants stay on the CPU
            if t is not None:
                return t.device
        return torch.device("cpu")

    def to(self, device: Any) -> "Problem":
        """This problem on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a :class:`torch.device`).

        Returns ``self`` when it is already there, else a shallow copy whose tensor attributes
        (also inside dicts, lists, tuples and dataclasses such as :class:`ClientData`) are moved;
        dtypes are kept; the cache of constants (``self._cache``: smoothness, Gram matrices, x*)
        is copied as it is, on the CPU.
        The copy gives the same iterates up to the device's rounding of reductions (seeded draws
        are made on the CPU and moved). An unknown device, or CUDA where none is visible, raises
        :class:`~commpress.errors.ConfigError`.
        """
        dev = resolve_device(device, f"{self.name or type(self).__name__}.to")
        if dev is None:
            return self
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev == self.device:
            return self
        other = copy.copy(self)
        # every tensor attribute moved; the cache of constants (Gram matrices, x*) is copied as it
        # is: the constants stay on the CPU and the oracles move what they return (optimum())
        other.__dict__.update({k: (dict(v) if k == "_cache" and isinstance(v, dict) else _move(v, dev))
                               for k, v in self.__dict__.items()})
        other._device = dev
        return other

    # ---- deterministic oracles
    def x0(self) -> torch.Tensor:
        """The default starting point, ``(d,)``."""
        return torch.zeros(self.d, dtype=self.dtype, device=self.device)

    def client_losses(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """f_i(x) for every client, ``(n,)``."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor) -> float:
        """f(x) = mean of the client losses."""
        return float(self.client_losses(x).mean())

    def client_grads(self, x: torch.Tensor, *, clients: torch.Tensor | None = None) -> torch.Tensor:
        """∇f_i(x) for every client in one call, ``(n, d)``."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """∇f(x), ``(d,)``."""
        return self.client_grads(x).mean(dim=0)

    # ---- finite sums (None / NotImplementedError where the problem is not one)
    def num_samples(self) -> torch.Tensor | None:
        """m_i per client, ``(n,)`` int64, or None if the problem is not a finite sum."""
        return None

    def sample_grads(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """∇f_{i, index[i]}(x): one sample per client, ``index`` ``(n,)`` -> ``(n, d)``;
        ``index`` ``(n, k)`` -> ``(n, k, d)``."""
        raise NotImplementedError

    def sample_indices(
        self, generator: torch.Generator, batch_size: int, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(rows, batch_size)`` sample indices, uniform on ``0..m_i-1`` with replacement.

        One ``(n, batch_size)`` draw from ``generator`` for all n clients, then the rows of
        ``clients``: a client's draw does not depend on which other clients are asked. Reuse
        the result to evaluate the same samples at two points (SVRG: ∇f_ij(x) - ∇f_ij(w)).
        """
        m = self.num_samples()
        if m is None:
            raise NotImplementedError(f"{self.name or type(self).__name__} is not a finite sum")
        batch_size = _check_batch(batch_size)
        u = torch.rand((self.n, batch_size), generator=generator, dtype=torch.float64).to(m.device)
        index = torch.minimum((u * m[:, None]).long(), m[:, None] - 1)
        return index if clients is None else index[self._rows(clients)]

    def batch_grads(
        self, x: torch.Tensor, index: torch.Tensor, *, clients: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Average of the per-sample gradients over ``index`` ``(rows, k)``: ``(rows, d)``."""
        if index.dim() != 2:
            raise InputError(f"batch_grads expects index of shape (rows, k); got {tuple(index.shape)}.")
        return self.sample_grads(x, index, clients=clients).mean(dim=1)

    def minibatch_grads(
        self,
        x: torch.Tensor,
        generator: torch.Generator,
        batch_size: int,
        *,
        clients: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Unbiased minibatch gradients, ``(n, d)``: each client averages ``batch_size`` samples
        drawn uniformly with replacement using ``generator``."""
        index = self.sample_indices(generator, batch_size, clients=clients)
        return self.batch_grads(x, index, clients=clients)

    # ---- facts
    def smoothness(self) -> Smoothness:
        raise NotImplementedError

    def smoothness_matrices(self) -> torch.Tensor:
        r"""Smoothness matrices :math:`\mathbf L_i \succeq 0`, ``(n, d, d)`` float64: for all x, y,
        :math:`f_i(y) \le f_i(x) + \langle\nabla f_i(x), y-x\rangle + \frac12\|y-x\|^2_{\mathbf L_i}`
        (Safaryan, Hanzely, Richtárik, NeurIPS 2021). Raises NotImplementedError where unknown."""
        raise NotImplementedError(f"{self.name or type(self).__name__} does not know its smoothness matrices")

    def optimum(self) -> tuple[float, torch.Tensor] | None:
        """(f*, x*) where it can be computed, else None."""
        return None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "n": self.n, "d": self.d, "dtype": str(self.dtype)}
        out.update(getattr(self, "params", {}))
        return out

    # ---- helpers for subclasses
    def _rows(self, clients: torch.Tensor | None) -> torch.Tensor | None:
        """Validated int64 client index (None for all clients)."""
        if clients is None:
            return None
        clients = torch.as_tensor(clients)
        if clients.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise InputTypeError(f"clients must be an integer tensor; got dtype {clients.dtype}.")
        clients = clients.reshape(-1).long()
        if clients.numel() and (int(clients.min()) < 0 or int(clients.max()) >= self.n):
            raise InputError(
                f"clients must lie in [0, {self.n - 1}]; got values from {int(clients.min())} to "
                f"{int(clients.max())}."
            )
        return clients.to(self.device)

    def _point(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        """``x`` as ``(d,)`` or ``(rows, d)`` in the problem's dtype, on its device, shape-checked."""
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"x must be a torch.Tensor; got {type(x).__name__}. Use torch.as_tensor(x).")
        if not x.is_floating_point():
            raise InputTypeError(f"x must be a floating tensor; got dtype {x.dtype}. Use x.double().")
        if not (x.shape == (self.d,) or x.shape == (rows, self.d)):
            raise InputError(
                f"x must have shape ({self.d},) (one point) or ({rows}, {self.d}) (one point per "
                f"client); got {tuple(x.shape)}."
            )
        return x.to(device=self.device, dtype=self.dtype)

    def _full_point(self, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """``x`` for all n clients: per-client points of a subset are placed in an ``(n, d)`` zero matrix.

        Oracles compute every row and select ``clients`` afterwards, so that a subset's rows are
        bit-identical to the same rows of the full call (BLAS results may depend on the batch
        shape and memory layout; the simulator and a process holding some clients must agree).
        """
        if rows is None or x.dim() == 1:
            return x
        full = torch.zeros((self.n, self.d), dtype=x.dtype, device=x.device)
        full[rows.to(x.device)] = x
        return full

    def _index(self, index: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """Validated sample index ``(rows,)`` or ``(rows, k)`` within each client's m_i."""
        m = self.num_samples()
        if m is None:
            raise NotImplementedError(f"{self.name or type(self).__name__} is not a finite sum")
        index = torch.as_tensor(index)
        if index.is_floating_point() or index.dtype == torch.bool:
            raise InputTypeError(f"sample index must be an integer tensor; got dtype {index.dtype}.")
        index = index.to(m.device)
        mr = m if rows is None else m[rows.to(m.device)]
        if index.dim() not in (1, 2) or index.shape[0] != mr.shape[0]:
            raise InputError(
                f"sample index must have shape ({mr.shape[0]},) or ({mr.shape[0]}, k); got "
                f"{tuple(index.shape)}."
            )
        index = index.long()
        bound = mr if index.dim() == 1 else mr[:, None]
        if bool(((index < 0) | (index >= bound)).any()):
            raise InputError(
                "sample index out of range: client i has samples 0..m_i-1 with m_i = "
                f"num_samples() (min m_i = {int(mr.min())}); got max index {int(index.max())}."
            )
        return index


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in ``value`` (a tensor, or one level of dict / list / tuple / dataclass), or None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    elif dataclasses.is_dataclass(value) and not isinstance(value, (type, Smoothness)):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return None
    return next((v for v in items if isinstance(v, torch.Tensor)), None)


def _move(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor moved to ``device`` (through dicts, lists, tuples and dataclasses;
    :class:`Smoothness` and other objects are returned as they are)."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_move(v, device) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_move(v, device) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, (type, Smoothness)):
        moved = {f.name: _move(getattr(value, f.name), device) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **moved)
    return value


def _check_batch(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}.")
    return batch_size
