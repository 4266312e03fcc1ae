"""QSGD: random dithering in the l_2 norm (Alistarh et al., NeurIPS 2017)."""

from __future__ import annotations

from commpress.compressors.dithering import Dithering
from commpress.compressors.registry import register


@register("qsgd")
class QSGD(Dithering):
    r"""QSGD: random dithering with :math:`p = 2` and s levels.

    .. math:: \mathcal C(x)_j = \|x\|_2 \operatorname{sign}(x_j)\, \frac{\alpha_j}{s}, \qquad
              \alpha_j = \lfloor s |x_j|/\|x\|_2 + \xi_j \rfloor,\ \xi_j \sim U[0,1).

    Class: unbiased; exact error :math:`\frac{\|x\|^2}{s^2}\sum_j\phi(s|x_j|/\|x\|)`;
    ``omega`` = :math:`\sqrt d - 1` for s = 1 (exact) and :math:`\min(d/(4s^2), \sqrt d/s)` otherwise (the
    sharp bound, ``extras["omega_bound"]`` for every s); the paper's value
    :math:`\min(d/s^2, \sqrt d/s)` (QSGD Lemma 3.1, 4x looser in the first term) is ``extras["omega_paper"]``, with
    ``extras["A_paper"]`` = omega_paper/n for the theory module's ``convention="paper"``.
    Payload as :class:`~commpress.compressors.dithering.Dithering` (fixed width, or QSGD's Elias-omega
    stream with ``elias=True``). Randomness: private, tag ``"qsgd/u"``.

    Args:
        s: number of nonzero levels (default 1).
        elias: QSGD's variable-length Elias-omega encoding (default False).

    References:
        Alistarh, Grubic, Li, Tomioka, Vojnovic, QSGD: Communication-efficient SGD via gradient
        quantization and encoding, NeurIPS 2017, Lemma 3.1 and Sec. 3.2.
    """

    def __init__(self, s: int = 1, elias: bool = False) -> None:
        super().__init__(p=2, s=s, elias=elias)

    def params(self) -> dict:
        return {"s": self.s, "elias": self.elias}
