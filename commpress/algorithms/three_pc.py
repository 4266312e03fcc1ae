"""3PC: three-point compressors (EF21, LAG, CLAG, 3PCv2, 3PCv4, 3PCv5) and lazy uplinks that skip clients."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms._oracle import Oracle
from commpress.algorithms.base import (
    INIT_ROUND,
    Algorithm,
    algorithm_state,
    check_positive,
    compressor_theory,
    contractive_scale,
    resolve_compressor,
    shared_uniform,
)
from commpress.algorithms.registry import register
from commpress.compressors.base import Compressor
from commpress.errors import ConfigError
from commpress.theory.lazy import THREE_PC_MECHANISMS

G0_CHOICES = ("grad", "zero")


class SkippingUplink(Compressor):
    """A compressor whose message is empty for the clients that skip the round (lazy aggregation).

    Row j is sent through ``inner`` when ``send[j]`` is True; otherwise the client sends nothing
    (an empty payload, 0 bits) and the server decodes a zero row. The wire signals a skip by the
    empty message; ``flag_bits=1`` charges one bit per skip in the simulator's ledger (the option
    ``charge_skip_flag`` of the lazy methods: byte-aligned wire payloads cannot carry a single bit,
    so only the simulator's fast path counts it). Used per round: ``send`` holds the rows of one call.
    """

    def __init__(self, inner: Compressor, send: torch.Tensor, flag_bits: int = 0) -> None:
        self.inner = inner
        self.send = send.reshape(-1).to(torch.bool).cpu()
        self.flag_bits = int(flag_bits)
        self.name = inner.name
        self.correlated = inner.correlated
        self.deterministic = inner.deterministic

    def params(self) -> dict[str, Any]:
        return self.inner.params()

    def theory(self, n: int, d: int):
        return self.inner.theory(n, d)

    def apply(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None):
        X_hat, bits = self.inner.apply(X, seed, clients=clients, n=n)
        send = self.send.to(X_hat.device)
        X_hat = torch.where(send[:, None], X_hat, torch.zeros((), dtype=X_hat.dtype, device=X_hat.device))
        bits = torch.where(self.send, bits, torch.full_like(bits, self.flag_bits))
        return X_hat, bits

    def encode(self, X: torch.Tensor, seed: int, *, clients: Any = None, n: int | None = None) -> list[bytes]:
        payloads = self.inner.encode(X, seed, clients=clients, n=n)
        return [p if s else b"" for p, s in zip(payloads, self.send.tolist())]

    def decode(self, payloads: list[bytes], seed: int, d: int, *, clients: Any = None, n: int | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        rows = len(payloads)
        idx = torch.tensor(clients, dtype=torch.int64).reshape(-1) if clients is not None else torch.arange(rows)
        out = torch.zeros(rows, int(d), dtype=dtype, device=device)
        sent = [j for j, p in enumerate(payloads) if len(p) > 0]
        if sent:
            part = self.inner.decode([payloads[j] for j in sent], seed, d, clients=idx[sent],
                                     n=rows if n is None else n, dtype=dtype, device=device)
            out[torch.tensor(sent, device=out.device)] = part
        return out


def skip_uplink(alg: Algorithm, X: torch.Tensor, compressor: Compressor, send: torch.Tensor, t: int,
                *more: int | str, flag_bits: int = 0) -> torch.Tensor:
    """``alg._up`` for lazy clients: rows with ``send`` False send nothing (0 bits, or ``flag_bits``)
    and decode as zero rows; the others are compressed by ``compressor`` with the round's seed."""
    return alg._up(X, SkippingUplink(compressor, send, flag_bits), t, *more)


@algorithm_state
class ThreePCState:
    x: torch.Tensor      # (d,)      server iterate x^t
    g_i: torch.Tensor    # (rows, d) client estimators g_i^t (the server holds the same rows)
    g: torch.Tensor      # (d,)      g^t, the mean of the rows of g_i
    grads: torch.Tensor  # (rows, d) each client's last gradient ∇f_i(x^t) (the 3PC point y)
    sent: torch.Tensor   # (rows,)   bool: who sent in the last round (all True after init)
    t: int               # round number


@register("three_pc")
class ThreePC(Algorithm):
    r"""The 3PC method (Richtárik, Sokolov, Gasanov, Fatkhullin, Li, Gorbunov, ICML 2022, Alg. 1).

    A three-point compressor :math:`\mathcal C_{h,y}` satisfies
    :math:`\mathbb E\|\mathcal C_{h,y}(x)-x\|^2\le(1-A)\|h-y\|^2+B\|x-y\|^2`. Round t:

    .. math::
        x^{t+1} = x^t - \gamma g^t,\qquad
        g_i^{t+1} = \mathcal C_{g_i^t,\,\nabla f_i(x^t)}\big(\nabla f_i(x^{t+1})\big),\qquad
        g^{t+1} = \tfrac1n\textstyle\sum_i g_i^{t+1}.

    Mechanisms (``mechanism=``), with :math:`x=\nabla f_i(x^{t+1})`, :math:`h=g_i^t`, :math:`y=\nabla f_i(x^t)`:

    - ``"ef21"``: :math:`h+\mathcal C(x-h)` (sends :math:`\mathcal C(x-h)`): EF21 iterate for iterate;
    - ``"lag"``: :math:`x` if :math:`\|x-h\|^2>\zeta\|x-y\|^2` (sends :math:`x` dense; the server replaces its
      row :math:`g_i`), else :math:`h` (sends nothing);
    - ``"clag"``: :math:`h+\mathcal C(x-h)` if :math:`\|x-h\|^2>\zeta\|x-y\|^2`, else :math:`h` (sends nothing);
    - ``"3pcv2"``: :math:`b+\mathcal C(x-b)`, :math:`b=h+\mathcal Q(x-y)` (sends :math:`\mathcal Q(x-y)` and
      :math:`\mathcal C(x-b)`; :math:`\mathcal Q` = ``compressor2``, unbiased);
    - ``"3pcv4"``: :math:`b+\mathcal C_1(x-b)`, :math:`b=h+\mathcal C_2(x-h)` (two contractive messages;
      :math:`\mathcal C_2` = ``compressor2``);
    - ``"3pcv5"``: with a shared coin of probability p, :math:`x` (dense), else :math:`h+\mathcal C(x-y)`.

    The trigger is each client's own test, a boolean mask over the rows (strict ">", as in the
    authors' code). A client that skips sends nothing: 0 uplink bits (``charge_skip_flag=True``: 1
    bit). The server broadcasts :math:`g^t` (32 d bits per client by default). ζ = 0 gives GD (LAG)
    and EF21 (CLAG); CLAG with the identity compressor is LAG.

    Stepsize (``gamma=None``): :math:`(L_-+L_{QM}\sqrt{B/A})^{-1}` with the mechanism's :math:`(A, B)`
    (EF21: :math:`(\theta,\beta)`; LAG: :math:`(1,\zeta)`; CLAG: :math:`(\theta,\max\{\beta,\zeta\})`; 3PCv2:
    :math:`(\delta,(1-\delta)\omega_2)`; 3PCv4: :math:`(\theta(\bar\delta),\beta(\bar\delta))` with
    :math:`\bar\delta=1-(1-\delta)(1-\delta_2)`; 3PCv5: :math:`(1-\sqrt{1-p}, (1-p)(1-\delta)/(1-\sqrt{1-p}))`). ``zeta=None``: 1 for LAG, :math:`\beta(\delta)` for
    CLAG (library choices: CLAG then keeps EF21's stepsize).

    Args:
        compressor: contractive compressor (an unbiased one is rescaled by :math:`1/(1+\omega)`,
            ``scale="auto"``); LAG sends dense vectors and takes none.
        mechanism: ``"ef21"``, ``"lag"``, ``"clag"`` (default), ``"3pcv2"``, ``"3pcv4"`` or ``"3pcv5"``.
        zeta: trigger constant ζ >= 0 (LAG, CLAG).
        p: probability of a dense round (3PCv5).
        compressor2: the first message's compressor (3PCv2: unbiased :math:`\mathcal Q`; 3PCv4: contractive
            :math:`\mathcal C_2`).
        g0: ``"grad"`` (:math:`g_i^0=\nabla f_i(x^0)`, one dense uplink) or ``"zero"``.
        scale: ``"auto"``, None or a factor (as EF21).
        charge_skip_flag: charge 1 bit for a skipped message (default 0 bits).

    References:
        Richtárik, Sokolov, Gasanov, Fatkhullin, Li, Gorbunov, 3PC: Three point compressors for
        communication-efficient distributed training and a better theory for lazy aggregation,
        ICML 2022 (Alg. 1; LAG, CLAG, 3PCv5 and their constants).
    """

    mechanism_default: str = "clag"

    def __init__(
        self,
        problem,
        network=None,
        compressor: Any = None,
        *,
        gamma: float | None = None,
        seed: int = 0,
        downlink_compressor: Any = None,
        mechanism: str | None = None,
        zeta: float | None = None,
        p: float | None = None,
        compressor2: Any = None,
        g0: str = "grad",
        scale: Any = "auto",
        charge_skip_flag: bool = False,
    ) -> None:
        owner = type(self).__name__
        mechanism = self.mechanism_default if mechanism is None else mechanism
        if mechanism not in THREE_PC_MECHANISMS:
            raise ConfigError(f"{owner} needs mechanism in {list(THREE_PC_MECHANISMS)}; got mechanism={mechanism!r}.")
        if mechanism == "lag" and self.uses_compressor:
            if compressor is not None and not (getattr(compressor, "name", compressor) == "identity"):
                raise ConfigError(f"{owner} mechanism='lag' sends dense vectors and takes no compressor; got "
                                  f"compressor={compressor!r}. Use mechanism='clag' to compress the messages.")
            compressor = "identity"
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor)
        self.mechanism = mechanism
        if g0 not in G0_CHOICES:
            raise ConfigError(f"{owner} needs g0 in {list(G0_CHOICES)}; got g0={g0!r}.")
        self.g0 = g0
        if not isinstance(charge_skip_flag, bool):
            raise ConfigError(f"{owner} needs charge_skip_flag True or False; got {charge_skip_flag!r}.")
        self.charge_skip_flag = charge_skip_flag
        if mechanism == "lag":
            self.scale, self.delta = 1.0, 1.0
        else:
            self.scale, self.delta = contractive_scale(self.compressor, self.n, self.d, scale, owner)
        if zeta is not None and mechanism not in ("lag", "clag"):
            raise ConfigError(f"{owner} mechanism={mechanism!r} has no trigger; zeta is for 'lag' and 'clag'.")
        if p is not None and mechanism != "3pcv5":
            raise ConfigError(f"{owner} mechanism={mechanism!r} has no coin; p is for '3pcv5'.")
        if mechanism == "3pcv5" and p is None:
            raise ConfigError(f"{owner} mechanism='3pcv5' needs p, the probability of a dense round; pass p=0.1 "
                              "for example.")
        self.p = None if p is None else check_positive("p", p, owner, upper=1.0)
        self.compressor2, self.scale2, self.omega2, self.delta2 = None, 1.0, None, None
        if mechanism in ("3pcv2", "3pcv4"):
            if compressor2 is None:
                raise ConfigError(f"{owner} mechanism={mechanism!r} needs a second compressor; pass "
                                  "compressor2='randk' (3PCv2: unbiased) or compressor2='topk' (3PCv4: contractive).")
            self.compressor2 = resolve_compressor(compressor2, "compressor2")
            th2 = compressor_theory(self.compressor2, self.n, self.d)
            if mechanism == "3pcv2":
                if th2 is None or th2.kind != "unbiased" or th2.omega is None:
                    raise ConfigError(f"{owner} mechanism='3pcv2' needs an unbiased compressor2 (its omega enters B); "
                                      f"got {self.compressor2.name!r}. Use compressor2='randk', or pass gamma=... .")
                self.omega2 = float(th2.omega)
            else:
                self.scale2, self.delta2 = contractive_scale(self.compressor2, self.n, self.d, scale, owner)
        elif compressor2 is not None:
            raise ConfigError(f"{owner} mechanism={mechanism!r} takes one compressor; compressor2 is for '3pcv2' "
                              "and '3pcv4'.")
        if zeta is not None:
            try:
                z = float(zeta)
            except (TypeError, ValueError):
                raise ConfigError(f"{owner} needs a number zeta >= 0; got zeta={zeta!r}.") from None
            if not (z >= 0 and z < float("inf")):
                raise ConfigError(f"{owner} needs a finite trigger zeta >= 0; got zeta={zeta!r}.")
            zeta = z
        self.zeta = zeta
        self.zeta_source = "given" if zeta is not None else "theory"
        self.oracle = Oracle(problem, self.network, owner=owner)
        if self.zeta is None and mechanism in ("lag", "clag"):
            self.zeta = self._default_zeta()
        self._resolve_gamma()

    def _default_zeta(self) -> float:
        from commpress.theory.lazy import clag_default_zeta, lag_default_zeta

        if self.mechanism == "lag":
            return lag_default_zeta()
        if self.delta is None:
            raise ConfigError(f"{self.name}: the compressor states no contraction constant, so the default trigger "
                              "beta(delta) is unknown; pass zeta=... (and gamma=...).")
        return clag_default_zeta(self.delta)

    def _theory_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"zeta": self.zeta}
        if self.mechanism != "lag":
            out["delta"] = self.delta
        if self.name == "three_pc":
            out.update(mechanism=self.mechanism, p=self.p, omega2=self.omega2, delta2=self.delta2)
        return out

    def _extra_params(self) -> dict[str, Any]:
        c2 = None if self.compressor2 is None else {"name": self.compressor2.name, **self.compressor2.params()}
        return {"mechanism": self.mechanism, "zeta": self.zeta, "zeta_source": self.zeta_source, "p": self.p,
                "compressor2": c2,
                "g0": self.g0, "scale": self.scale, "delta": self.delta, "charge_skip_flag": self.charge_skip_flag}

    # ------------------------------------------------------------------ rounds
    def init(self, x0: torch.Tensor | None = None) -> ThreePCState:
        x = self._x0(x0)
        G = self.oracle.exact(x)
        if self.g0 == "zero":
            g_i = torch.zeros_like(G)
        else:
            g_i = self._up(G, self.dense, INIT_ROUND)
        sent = torch.ones(self.network.rows, dtype=torch.bool)
        return ThreePCState(x=x, g_i=g_i, g=self.network.mean(g_i), grads=G, sent=sent, t=0)

    def trigger(self, g_i: torch.Tensor, G_new: torch.Tensor, G_old: torch.Tensor) -> torch.Tensor:
        r"""The clients that send, ``(rows,)`` bool:
        :math:`\|g_i^t-\nabla f_i(x^{t+1})\|^2>\zeta\|\nabla f_i(x^{t+1})-\nabla f_i(x^t)\|^2` (strict)."""
        return (g_i - G_new).pow(2).sum(1) > self.zeta * (G_new - G_old).pow(2).sum(1)

    def step(self, state: ThreePCState) -> ThreePCState:
        t = state.t
        x = state.x - self.gamma * self._down(state.g, t)
        G = self.oracle.exact(x)
        flag = 1 if self.charge_skip_flag else 0
        if self.mechanism == "ef21":
            C = self.scale * self._up(G - state.g_i, self.compressor, t)
            sent = torch.ones(self.network.rows, dtype=torch.bool)
        elif self.mechanism == "lag":
            # a triggered client sends ∇f_i(x^{t+1}) dense; the server replaces its row g_i
            sent = self.trigger(state.g_i, G, state.grads)
            R = skip_uplink(self, G, self.dense, sent, t, flag_bits=flag)
            g_i = torch.where(sent[:, None], R, state.g_i)
            return ThreePCState(x=x, g_i=g_i, g=self.network.mean(g_i), grads=G, sent=sent, t=t + 1)
        elif self.mechanism == "clag":
            sent = self.trigger(state.g_i, G, state.grads)
            C = self.scale * skip_uplink(self, G - state.g_i, self.compressor, sent, t, flag_bits=flag)
        elif self.mechanism == "3pcv2":
            # b = h + Q(x - y), then g_i^{t+1} = b + C(x - b): two messages
            Q = self._up(G - state.grads, self.compressor2, t, "3pc/first")
            b = state.g_i + Q
            C = Q + self.scale * self._up(G - b, self.compressor, t)
            sent = torch.ones(self.network.rows, dtype=torch.bool)
        elif self.mechanism == "3pcv4":
            # b = h + C2(x - h), then g_i^{t+1} = b + C1(x - b): two messages
            C2 = self.scale2 * self._up(G - state.g_i, self.compressor2, t, "3pc/first")
            b = state.g_i + C2
            C = C2 + self.scale * self._up(G - b, self.compressor, t)
            sent = torch.ones(self.network.rows, dtype=torch.bool)
        else:  # 3pcv5: the shared coin decides for every client
            dense = shared_uniform(self._seed(t, "coin"), "3pc/coin") < self.p
            sent = torch.ones(self.network.rows, dtype=torch.bool)
            if dense:
                C = self._up(G - state.g_i, self.dense, t)
            else:
                # the server adds C(x - y) to h: g_i^{t+1} = g_i^t + C(∇f_i(x^{t+1}) - ∇f_i(x^t))
                C = self.scale * self._up(G - state.grads, self.compressor, t)
        return ThreePCState(x=x, g_i=state.g_i + C, g=state.g + self.network.mean(C), grads=G, sent=sent, t=t + 1)

    def known_gradient(self, state: ThreePCState) -> torch.Tensor:
        # every client holds its exact gradient at x^t: their mean is ∇f(x^t)
        return self.network.mean(state.grads)
