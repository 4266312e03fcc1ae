"""GradSkip: ProxSkip / Scaffnew in which clients with a small local condition number skip gradient steps."""

from __future__ import annotations

from typing import Any

import torch

from commpress.algorithms.proxskip import ProxSkip
from commpress.algorithms.registry import register
from commpress.errors import ConfigError

#: Iterations per keyed draw of GradSkip's private coins (a library choice: one draw per 64 iterations).
ETA_BLOCK = 64


@register("gradskip")
class GradSkip(ProxSkip):
    r"""GradSkip (Maranjyan, Safaryan, Richtárik 2022, Algorithm 1).

    Scaffnew with a private coin :math:`\eta_{i,t}\sim\mathrm{Bernoulli}(q_i)` per client (tag
    ``"gradskip/eta"``) besides the shared communication coin :math:`\theta_t\sim\mathrm{Bernoulli}(p)`
    (tag ``"proxskip/coin"``; the private coins are drawn in blocks, see :meth:`eta`):

    .. math::
        \hat h_{i,t+1} = \eta_{i,t}h_{i,t} + (1-\eta_{i,t})\nabla f_i(x_{i,t}),\qquad
        \hat x_{i,t+1} = x_{i,t} - \gamma\big(\nabla f_i(x_{i,t}) - \hat h_{i,t+1}\big),

        x_{i,t+1} = \begin{cases}\frac1n\sum_j\big(\hat x_{j,t+1}-\frac\gamma p\hat h_{j,t+1}\big) & \theta_t = 1\\
        \hat x_{i,t+1} & \theta_t = 0\end{cases},\qquad
        h_{i,t+1} = \hat h_{i,t+1} + \frac p\gamma\big(x_{i,t+1}-\hat x_{i,t+1}\big).

    After its first :math:`\eta_{i,t}=0` a client stops moving (:math:`\hat x=x`,
    :math:`\hat h=\nabla f_i(x)`) until the next communication and computes no further gradient:
    the state's ``grads`` counts a computation only when the client's iterate moved. Expected
    computations per round: :math:`1/(1-q_i(1-p))` (``theory.expected_gradients_per_round``).
    :math:`q_i\equiv1` is Scaffnew iterate for iterate. Bits as Scaffnew: 32 d up and down per
    client on communication rounds, 0 otherwise.

    Defaults: :math:`\gamma=1/L_{\max}`, :math:`p=1/\sqrt{\kappa_{\max}}=\sqrt{\gamma\mu}`,
    :math:`q_i=\frac{1-1/\kappa_i}{1-1/\kappa_{\max}}`, :math:`\kappa_i=L_i/\mu` (the theorem's
    choice as we recall it; the paper's exact condition on :math:`q_i` was not recovered and this
    value is the library's labelled default). μ: strong convexity of every :math:`f_i` (``mu=``,
    default the problem's μ). GradSkip+ and VR-GradSkip+ are not implemented.

    Args:
        p: communication probability in (0, 1].
        q: the probabilities :math:`q_i` in [0, 1]: one number or n numbers (None: the default above).
        mu: strong-convexity constant used by the defaults.
        float_bits: width of the model messages (32 or 64).

    References:
        Maranjyan, Safaryan, Richtárik, GradSkip: Communication-accelerated local gradient methods
        with better computational complexity, arXiv:2210.16402, Algorithm 1.
    """

    def __init__(self, problem, network=None, compressor: Any = None, *, gamma: float | None = None, seed: int = 0,
                 downlink_compressor: Any = None, p: float | None = None, q: Any = None,
                 mu: float | None = None, float_bits: int = 32) -> None:
        self._q_arg = q
        super().__init__(problem, network, compressor, gamma=gamma, seed=seed, downlink_compressor=downlink_compressor,
                         p=p, mu=mu, float_bits=float_bits)
        if q is None:
            q = self._theory_defaults()["q"]
            self.q_source = "theory"
        else:
            self.q_source = "given"
        self.q = _check_q(q, self.n, type(self).__name__)
        self._q_rows = self.network.local(self.q)
        self._eta_block: tuple[int, torch.Tensor] | None = None

    def _theory_params(self) -> dict[str, Any]:
        q = self._q_arg
        return {**super()._theory_params(), "q": None if q is None else _check_q(q, self.n, "GradSkip").tolist()}

    def _extra_params(self) -> dict[str, Any]:
        out = super()._extra_params()
        for k in ("reg", "lam", "batch_size", "noise"):
            out.pop(k, None)
        return {**out, "q": self.q.tolist(), "q_source": self.q_source}

    def eta(self, t: int) -> torch.Tensor:
        r"""The private coins :math:`\eta_{i,t}` of iteration ``t``, ``(rows,)`` bool.

        Drawn in blocks of ``ETA_BLOCK`` iterations: :math:`\eta_{i,t}` is
        :math:`u_{i,t\bmod B}<q_i` with :math:`u_i` client i's private uniform row of the block
        (seed ``derive_seed(seed, t // B, "eta")``, tag ``"gradskip/eta"``): a pure function of the
        run seed, t and the client, one keyed draw per block (the block is cached, not state).
        """
        block = t // ETA_BLOCK
        if self._eta_block is None or self._eta_block[0] != block:
            u = self.network.private_rand(self._seed(block, "eta"), "gradskip/eta", (ETA_BLOCK,))
            self._eta_block = (block, u < self._q_rows.to(torch.float64)[:, None])
        return self._eta_block[1][:, t % ETA_BLOCK]

    def _control(self, G: torch.Tensor, H: torch.Tensor, t: int) -> torch.Tensor:
        return torch.where(self.eta(t).to(H.device)[:, None], H, G)


def _check_q(q: Any, n: int, owner: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(q, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{owner} needs q: one probability or {n} probabilities in [0, 1]; got q={q!r}.") from None
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n or not bool(((t >= 0) & (t <= 1)).all()):
        raise ConfigError(f"{owner} needs q: one probability or {n} probabilities in [0, 1]; got q={q!r}.")
    return t
