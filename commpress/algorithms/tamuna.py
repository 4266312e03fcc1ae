"""TAMUNA and CompressedScaffnew: local training with sparsified model averaging (and partial participation)."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from commpress._rng import derive_seed, shared_generator
from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import algorithm_state, check_int, check_positive
from commpress.algorithms.proxskip import _LocalTraining
from commpress.algorithms.registry import register
from commpress.compressors import make as make_compressor
from commpress.compressors._checks import check_float_bits
from commpress.compressors.base import Compressor, Context, Layout, Message
from commpress.errors import ConfigError
from commpress.wire.fields import float_field


def cohort(seed: int, n: int, c: int) -> torch.Tensor:
    """The cohort of a round: the first c entries of one shared ``randperm(n)`` (tag ``"pp/sample"``), sorted."""
    if c >= n:
        return torch.arange(n)
    perm = torch.randperm(n, generator=shared_generator(seed, "pp/sample"))
    return perm[:c].sort().values


def columns(seed: int, n: int, c: int) -> torch.Tensor:
    """``(n,)`` int64: the mask column of every client (−1 outside the cohort). The cohort's clients,
    in increasing order, get the columns of one shared ``randperm(c)`` (tag ``"tamuna/mask"``)."""
    out = torch.full((n,), -1, dtype=torch.int64)
    members = cohort(seed, n, c)
    perm = torch.randperm(c, generator=shared_generator(seed, "tamuna/mask"))
    out[members] = perm
    return out


def masks(seed: int, n: int, d: int, c: int, s: int, clients: torch.Tensor | None = None) -> torch.Tensor:
    r"""``(rows, d)`` bool: the coordinates each client keeps in the round of ``seed``.

    The pattern is cyclic: coordinate j is kept by the columns :math:`(js+k)\bmod c`, k < s, so every
    coordinate has exactly s holders among the cohort and every column
    :math:`\lfloor sd/c\rfloor` or :math:`\lceil sd/c\rceil` coordinates; the columns are dealt to the
    cohort by :func:`columns`. Clients outside the cohort keep nothing.
    """
    col = columns(seed, n, c)
    if clients is not None:
        col = col[clients]
    j = torch.arange(d)
    pattern = torch.zeros(d, c, dtype=torch.bool)
    for k in range(s):  # s <= c columns per coordinate (s is small)
        pattern[j, (j * s + k) % c] = True
    out = torch.zeros(col.numel(), d, dtype=torch.bool)
    member = col >= 0
    out[member] = pattern[:, col[member]].T
    return out


class CohortMask(Compressor):
    r"""TAMUNA's mask sparsifier: cohort client i sends its kept coordinates :math:`q_i\circ x_i`, unscaled.

    .. math:: \mathcal C_i(x) = q_i \circ x,\qquad \sum_{i\in\Omega} q_i = s\,\mathbf 1,

    with the masks of :func:`masks` (cohort ``nice(c)`` and column permutation drawn from the seed:
    0 index bits). ``(1/s)`` times the sum of the messages is the cohort's average where all of
    them agree, which is what TAMUNA's server needs. Correlated; not unbiased (used by TAMUNA only).

    Payload per cohort client: its :math:`\approx sd/c` kept values, ``float_bits`` each; others 0 bits.

    References:
        Condat, Agarský, Malinovsky, Richtárik, TAMUNA, arXiv:2302.09832 (mask pattern as in the
        public Flower baseline ``baselines/tamuna``).
    """

    name = "tamuna_mask"
    correlated = True

    def __init__(self, c: int, s: int, float_bits: int = 32) -> None:
        self.c, self.s = int(c), int(s)
        self.float_bits = check_float_bits(float_bits, "CohortMask")

    def params(self) -> dict:
        return {"c": self.c, "s": self.s, "float_bits": self.float_bits}

    def _mask(self, ctx: Context) -> torch.Tensor:
        return masks(ctx.seed, ctx.n, ctx.d, self.c, self.s, ctx.clients).to(ctx.device)

    def _check_shape(self, ctx: Context) -> None:
        if not 2 <= self.s <= self.c <= ctx.n:
            raise ConfigError(f"CohortMask needs 2 <= s <= c <= n; got s={self.s}, c={self.c}, n={ctx.n}.")

    def _order(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts = mask.sum(dim=1)
        idx = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # kept coordinates first, in order
        return counts, idx[:, : int(counts.max()) if counts.numel() else 0]

    def _layout(self, ctx: Context, message: Message | None) -> Layout:
        counts = self._mask(ctx).sum(dim=1).cpu()
        return [([float_field("values", self.float_bits, int(k))], (counts == k).nonzero().reshape(-1))
                for k in counts.unique().tolist()]

    def _encode(self, X: torch.Tensor, ctx: Context) -> Message:
        mask = self._mask(ctx)
        counts, idx = self._order(mask)
        vals = X.gather(1, idx) * (torch.arange(idx.shape[1], device=X.device) < counts[:, None])
        return {"values": vals.to(torch.float32 if self.float_bits == 32 else torch.float64)}

    def _decode(self, message: Message, ctx: Context) -> torch.Tensor:
        mask = self._mask(ctx)
        counts, idx = self._order(mask)
        out = torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype, device=ctx.device)
        vals = message["values"][:, : idx.shape[1]].to(device=ctx.device, dtype=ctx.dtype)
        return out.scatter_(1, idx, vals) * mask


@algorithm_state
class TAMUNAState:
    x: torch.Tensor       # (d,)      server model x̄ of the last communication (x^0 before any)
    X: torch.Tensor       # (rows, d) client iterates
    H: torch.Tensor       # (rows, d) control variates h_i
    active: torch.Tensor  # (rows,)   bool, the clients of the current cohort
    grads: torch.Tensor   # (rows,)   int64, gradient computations of each client so far
    comms: int            # communication rounds so far (the cohort's round index r)
    t: int                # iteration (local step) number


@register("tamuna")
class TAMUNA(_LocalTraining):
    r"""TAMUNA (Condat, Agarský, Malinovsky, Richtárik 2023): local training, sparsified averaging, cohorts.

    Round r: the shared stream draws the cohort :math:`\Omega^{(r)}` (``nice(c)``) and the masks
    :math:`q_i` (``CohortMask``: coordinate j kept by exactly s cohort clients). Each cohort
    client starts from :math:`\bar x^{(r)}` and takes local steps; after each, the shared coin
    :math:`\theta_t\sim\mathrm{Bernoulli}(p)` (tag ``"proxskip/coin"``, the same coins as Scaffnew; a
    Geometric(p) number of local steps per round) decides whether to communicate:

    .. math::
        x_i \leftarrow x_i - \gamma\big(g_i(x_i) - h_i\big)\quad (i\in\Omega^{(r)}),\qquad
        \bar x^{(r+1)} = \frac1s\sum_{i\in\Omega^{(r)}} q_i\circ x_i,

        h_i \leftarrow h_i + \frac\eta\gamma\, q_i\circ\big(\bar x^{(r+1)} - x_i\big)\ (i\in\Omega^{(r)}),
        \qquad h_i\ \text{unchanged}\ (i\notin\Omega^{(r)}).

    :math:`\sum_ih_i=0` is invariant. Bits per communication round: cohort clients up their
    :math:`\approx sd/c` kept values (positions from the shared seed: 0 index bits); the server sends
    :math:`\bar x^{(r+1)}` (32 d bits) to the clients of :math:`\Omega^{(r)}` (for their control
    variates) and of :math:`\Omega^{(r+1)}` (their starting point), each charged once; the others
    cost 0 bits, as do iterations without communication (on a network without partial
    participation the model is broadcast to every client). Clients outside the cohort compute nothing.

    .. note:: The public Flower code defers the control-variate update to a client's next
       participation (using the model it receives then); this class updates it right after the
       aggregation, as the paper does. ``c = n`` is CompressedScaffnew; ``c = s = n`` with
       :math:`\eta=p` is Scaffnew with the same coins.

    Defaults: :math:`\gamma=1/L_{\max}` (any :math:`\gamma<2/L`), :math:`s=2`,
    :math:`\eta=p\frac{c(s-1)}{s(c-1)}` (the upper end of the admissible range
    :math:`[\frac p2, p\frac{c(s-1)}{s(c-1)}]`), :math:`p=\sqrt{\gamma\mu(c-1)/(s-1)}` (a library choice
    balancing the control variates' contraction :math:`p\eta s/c` against :math:`\gamma\mu`, as
    ProxSkip's :math:`\sqrt{\gamma\mu}` does; Scaffnew's value when s = c; the papers' p was not recovered).

    Args:
        p: communication probability in (0, 1].
        c: cohort size, 2 <= c <= n (default n).
        s: holders per coordinate, 2 <= s <= c (default 2).
        eta: control-variate stepsize in (0, 1] (None: the default above).
        mu: strong-convexity constant used by the default p.
        float_bits: width of the values sent (32 or 64), both ways unless ``downlink_compressor`` is given.
        batch_size, noise: stochastic oracle.

    References:
        Condat, Agarský, Malinovsky, Richtárik, TAMUNA: Doubly accelerated distributed optimization with
        local training, compression, and partial participation, arXiv:2302.09832; Condat, Agarský,
        Richtárik, Provably doubly accelerated federated learning (CompressedScaffnew), arXiv:2210.13277.
    """

    uses_compressor = False

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        p: float | None = None,
        c: int | None = None,
        s: int = 2,
        eta: float | None = None,
        mu: float | None = None,
        float_bits: int = 32,
        batch_size: int | None = None,
        noise: float = 0.0,
    ) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        owner = type(self).__name__
        if self.n < 2:
            raise ConfigError(f"{owner} needs n >= 2 clients (each coordinate is kept by s >= 2 of them); "
                              f"got n={self.n}.")
        self.c = self.n if c is None else check_int("c", c, owner, low=2)
        self.s = check_int("s", s, owner, low=2)
        if not self.s <= self.c <= self.n:
            raise ConfigError(f"{owner} needs 2 <= s <= c <= n; got s={self.s}, c={self.c}, n={self.n}. "
                              f"Use s=2 and c in [2, {self.n}].")
        self.compressor = CohortMask(self.c, self.s, float_bits)
        if downlink_compressor is None:
            self.downlink_compressor = make_compressor("identity", float_bits=self.compressor.float_bits)
        self.oracle = Oracle(problem, self.network, batch_size=batch_size, noise=noise, owner=owner)
        self._eta_arg = eta
        self._p_and_gamma(p, mu)
        if eta is None:
            self.eta, self.eta_source = float(self._theory_defaults()["eta"]), "theory"
        else:
            self.eta, self.eta_source = check_positive("eta", eta, owner, upper=1.0), "given"
        self._resolve_gamma()

    def _theory_params(self) -> dict[str, Any]:
        return {**super()._theory_params(), "c": self.c, "s": self.s, "eta": self._eta_arg}

    def _extra_params(self) -> dict[str, Any]:
        return {"p": self.p, "p_source": self.p_source, "c": self.c, "s": self.s, "eta": self.eta,
                "eta_source": self.eta_source, "mu": self.mu, **self.oracle.params()}

    def _round_seed(self, r: int) -> int:
        """The seed of communication round r: its cohort and masks."""
        return derive_seed(self.seed, int(r), "tamuna")

    def _active(self, r: int) -> torch.Tensor:
        member = torch.zeros(self.n, dtype=torch.bool)
        member[cohort(self._round_seed(r), self.n, self.c)] = True
        return self.network.local(member)

    def _send_model(self, x: torch.Tensor, t: int, r: int) -> torch.Tensor:
        """The server sends the new model to the clients of rounds r and r + 1 (all of them when c = n)."""
        if self.c == self.n or not _takes_participants(self.network.downlink):
            return self._down(x, t)  # a broadcast (networks without partial participation charge everyone)
        both = torch.cat([cohort(self._round_seed(r), self.n, self.c), cohort(self._round_seed(r + 1), self.n, self.c)])
        return self.network.downlink(x, self.downlink_compressor, self._seed(t, "downlink"), round=t,
                                     participants=both.unique())

    def init(self, x0: torch.Tensor | None = None) -> TAMUNAState:
        x = self._x0(x0)
        rows = self.network.rows
        X = x.expand(rows, self.d).clone()
        return TAMUNAState(x=x, X=X, H=torch.zeros_like(X), active=self._active(0),
                           grads=torch.zeros(rows, dtype=torch.int64), comms=0, t=0)

    def step(self, state: TAMUNAState) -> TAMUNAState:
        t, g, r = state.t, self.gamma, state.comms
        on = state.active.to(state.X.device)[:, None]
        G = self.oracle.at(state.X, self._seed(t, "oracle") if self.oracle.stochastic else None)
        X_hat = torch.where(on, state.X - g * (G - state.H), state.X)
        grads = state.grads + state.active.to(torch.int64)
        if not self.coin(t):
            return TAMUNAState(x=state.x, X=X_hat, H=state.H, active=state.active, grads=grads, comms=r, t=t + 1)
        seed_r = self._round_seed(r)
        part = ({"participants": cohort(seed_r, self.n, self.c)}
                if self.c < self.n and _takes_participants(self.network.uplink) else {})
        sent = self.network.uplink(X_hat, self.compressor, seed_r, round=t, **part)
        x = self._send_model(self.network.sum(sent) / self.s, t, r)
        Q = masks(seed_r, self.n, self.d, self.c, self.s, None if self.network.is_full else self.network.clients)
        H = state.H + (self.eta / g) * Q.to(X_hat.device) * (x - X_hat)
        X = x.expand_as(X_hat).clone()
        return TAMUNAState(x=x, X=X, H=H, active=self._active(r + 1), grads=grads, comms=r + 1, t=t + 1)


def _takes_participants(method) -> bool:
    """The network sends to a subset of the clients (``participants=``); networks without partial
    participation get a broadcast / every row (clients outside the cohort then send 0 bits)."""
    return "participants" in inspect.signature(method).parameters


@register("compressed_scaffnew")
class CompressedScaffnew(TAMUNA):
    r"""CompressedScaffnew (Condat, Agarský, Richtárik 2022): TAMUNA with full participation (c = n).

    .. math::
        x_i \leftarrow x_i - \gamma\big(\nabla f_i(x_i) - h_i\big),\qquad
        \bar x = \frac1s\sum_{i=1}^n q_i\circ x_i\ \ (\theta_t = 1),\qquad
        h_i \leftarrow h_i + \frac\eta\gamma\, q_i\circ(\bar x - x_i),\quad x_i\leftarrow\bar x.

    Every coordinate is averaged over s clients (default s = 2): each client sends
    :math:`\approx sd/n` values per communication round instead of d, with the accelerated
    communication complexity in both κ and d (uplink reals per client
    :math:`\tilde O((\sqrt d+d/\sqrt n)\sqrt\kappa+d)` for s = 2, as we recall the paper's statement).
    Defaults as :class:`TAMUNA` with c = n.

    References:
        Condat, Agarský, Richtárik, Provably doubly accelerated federated learning: the first
        theoretically successful combination of local training and communication compression,
        arXiv:2210.13277.
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, p: float | None = None, s: int = 2, eta: float | None = None,
                 mu: float | None = None, float_bits: int = 32, batch_size: int | None = None,
                 noise: float = 0.0) -> None:
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         p=p, c=None, s=s, eta=eta, mu=mu, float_bits=float_bits, batch_size=batch_size, noise=noise)
