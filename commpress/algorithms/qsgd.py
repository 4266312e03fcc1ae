"""QSGD: DCGD with the QSGD quantizer on stochastic gradients."""

from __future__ import annotations

from commpress.algorithms.dcgd import DCGD
from commpress.algorithms.registry import register


@register("qsgd")
class QSGD(DCGD):
    r"""QSGD (Alistarh, Grubic, Li, Tomioka, Vojnović, NeurIPS 2017).

    Each worker quantizes its own stochastic gradient with :math:`Q_s` and the server applies the
    average of the decoded vectors:

    .. math:: x^{k+1} = x^k - \frac\gamma n\sum_{j=1}^n Q_s(g_j^k),\qquad
              \mathbb E\|Q_s(v)-v\|^2 \le \min\{d/s^2, \sqrt d/s\}\|v\|^2.

    This is :class:`~commpress.algorithms.dcgd.DCGD` with ``compressor="qsgd"`` by default (any
    other compressor may be given). Bits are the exact payload of the wire layer, not the
    paper's Elias-coding bound.

    References:
        Alistarh et al., QSGD: Communication-efficient SGD via gradient quantization and
        encoding, NeurIPS 2017, Alg. 1, Lemma 3.1.
    """

    default_compressor = "qsgd"
