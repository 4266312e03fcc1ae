r"""Theory: stepsizes, optimal p, communication complexity, improvement factors, lower bounds.

Pure functions of problem constants (:class:`~commpress.problems.base.Smoothness`) and
compressor constants (:class:`~commpress.compressors.base.CompressorTheory`): numbers in, numbers
out; nothing here runs an optimiser. Each function names its paper in the table below.

Which function implements which formula:

=======================================  =======================================================================================================  ==============================
function                                 formula                                                                                                  source
=======================================  =======================================================================================================  ==============================
``default_stepsize``/``default_params``  dispatch to one builder per method (names of the simulator)                                              each builder's ``source``
``gd_stepsize``                          :math:`1/L_-`                                                                                            descent lemma
``psgd_stepsize``                        :math:`\min\{1/L_-,\sqrt{2n\Delta^0/(L_-K\sigma^2)}\}`                                                   standard SGD (Ghadimi & Lan 2013)
``dcgd_stepsize``                        :math:`\min\{1/L_-,1/\sqrt{L_-AL_{\max}K}\}`; identical: :math:`1/(L_-(1+A-B))`                          Khaled & Richtárik 2020
``diana_stepsize``                       :math:`1/(10L\sqrt{1+\omega/n}(\omega+2))`, :math:`1/((1+6\omega/n)L)`, ...                              VR-DIANA Thm 3 (m=1); unified
``vr_diana_stepsize``                    Thms 1–3: :math:`\frac1{L(1+36(\omega+1)/n)}`, ...                                                       VR-DIANA poster
``qsvrg_stepsize``                       :math:`1/(10L(1+\omega/n))` (labelled default)                                                           Alistarh et al. 2017 Thm 3.6
``terngrad_adam_defaults``               Adam :math:`\eta=10^{-3}` (labelled default)                                                             Kingma & Ba
``marina_M``/``marina_stepsize``         :math:`L_-+\sqrt{\frac{1-p}p((A-B)L_+^2+BL_\pm^2)}`                                                      Szlendak et al. 2021; CQ Thm 2
``marina_stepsize_original``             :math:`1/(L(1+\sqrt{(1-p)\omega/(pn)}))`                                                                 Gorbunov et al. 2021 Thm 2.1
``marina_optimal_p``                     :math:`\arg\min_pM(p)(32dp+(1-p)\zeta)`                                                                  CQ paper App. D.2.1
``marina_improvement_factor``            :math:`\frac{M(p)}{L_-}(p+(1-p)\frac\zeta{32d})`                                                         CQ paper App. B
``marina_communication``                 :math:`32d+\lceil2\Delta^0M/\varepsilon^2\rceil b(p)` and paper form                                     Gorbunov et al. 2021; CQ paper App. B
``gd_communication``                     :math:`\frac{2\Delta^0L_-}{\varepsilon^2}32d`                                                            descent lemma; CQ paper App. B
``normalized_improvement_factor``        vectorised :math:`\min_p(1+r\sqrt{(1-p)/p})(p+(1-p)z)`                                                   CQ paper App. D.2.1
``ab_constants``                         AB constants, conventions rigorous / homogeneous / paper                                                 CQ Prop. 1, Sec. 3.4
``quantizer_ab_constants``               :math:`A_{IQ}=\frac d{4n}`, :math:`A_{CQ}=\frac d{4n^2}` (paper), rigorous                               CQ Sec. 3.4; rigorous: ours
``quantized_marina_communication``       :math:`\frac{2\Delta^0L}{\varepsilon^2}\min_p(1+\sqrt{\frac{(1-p)A_Q}p})(32dp+(d+32)(1-p))`              CQ Prop. 4, App. B.1
``quantized_improvement_factor``         :math:`\mathrm{IF}_Q(d,n)`                                                                               CQ App. B, Sec. 4.4
``dn_equal_analysis``                    :math:`d=n`: 0.2277 / 0.03125 / 7.29                                                                     CQ App. B.2
``dn_plane``                             grids of :math:`\mathrm{IF}_{IQ},\mathrm{IF}_{CQ}`, ratio                                                CQ Sec. 4.4
``weighted_marina_stepsize``             :math:`M` with :math:`L_{+,w},L_{\pm,w}`, weighted AB                                                    CQ Thm 2
``iscc_wab_constants``                   :math:`((\omega+1)/\tau,1/\tau,q)`                                                                       CQ Lemma 4
``iscc_stepsize``                        :math:`(L_-+L_{AM}\sqrt{(1-p)(\omega+1)/(p\tau)})^{-1}`                                                  CQ Thm 3
``iscc_communication``                   exact bits with :math:`b=32dp+(1-p)\tau\zeta/n`                                                          CQ Thm 3 (bits: ours)
``iscc_corollary4_bound``                :math:`32d+\frac{4\Delta^0}{\varepsilon^2}(\frac{L_-\zeta}n+L_{AM}\sqrt{\frac{32d(\omega+1)\zeta}n})`    CQ Cor. 4 (our constants)
``marina_corollary4_bound``              :math:`32d+\frac{4\Delta^0}{\varepsilon^2}(L_-\zeta+L_+\sqrt{32d\omega\zeta/n})`                         CQ Cor. 4's argument for MARINA (ours)
``permk_cq_constants``                   :math:`A=\frac{n-q}{q(n-1)}+\frac{d-b}n`, :math:`B=\frac{n-q}{q(n-1)}`                                   CQ Alg. 3 / Cor. 3 (derived)
``rate_terms``/``rate``                  lower bounds (Thms 1–2), NEOLITHIC (Thms 3–4), baselines' rates                                          NEOLITHIC talk
``transient_complexity``                 :math:`n(1+\omega)^2`, :math:`n/\delta^2`, :math:`n^3/\delta^4`, :math:`n^3/\delta^8`, ∞                 NEOLITHIC talk
``lower_bound_valid_from``               :math:`T\ge(1+\omega)^2`, :math:`T\ge\delta^{-2}`                                                        Thms 1–2
``fcc_error_factor``                     :math:`(1-\delta)^R`                                                                                     FCC Lemma 1
``neolithic_R``/``neolithic_stepsize``   :math:`\lceil\delta^{-1}\ln4\rceil`; :math:`\min\{\frac1{4L},\sqrt{\frac{nR\Delta}{LK\sigma^2}}\}`       labelled defaults
``diana_iterations``                     :math:`\sqrt{1+\omega/n}(1+\omega)/\varepsilon`, ...                                                     VR-DIANA Thm 3 (m=1); unified
``vr_diana_iterations``                  :math:`(1+\frac\omega n)^{1/2}\frac{m^{2/3}+\omega}\varepsilon`, ...                                     VR-DIANA Thms 1–3
``ef21_theta_beta``                      :math:`\theta=1-\sqrt{1-\delta}`, :math:`\beta=\frac{1-\delta}{1-\sqrt{1-\delta}}`                       EF21
``ef21_stepsize``/``ef21_stepsize_pl``   :math:`(L_-+L_{QM}\sqrt{\beta/\theta})^{-1}`; PL variant                                                 EF21 Thms 1–2
``ef21_rounds``/``ef21_communication``   :math:`\lceil(2\Delta^0/\gamma+G^0/\theta)/\varepsilon^2\rceil`                                          EF21 Thm 1
``ef21_sgd_complexity``                  :math:`\frac{L\Delta^0}{\delta\varepsilon^2}`, :math:`+\frac{L\Delta^0\sigma^2}{\delta^3\varepsilon^4}`  Fatkhullin et al. 2021
``ef_stepsize``/``cser_stepsize``        :math:`\delta/(4L)` (labelled default)                                                                   —
``double_squeeze_stepsize``              :math:`(4L+\sigma\sqrt{K/n}+\epsilon^{2/3}K^{1/3})^{-1}`                                                 Tang et al. 2019 [recalled]
=======================================  =======================================================================================================  ==============================
"""

from commpress.theory.baselines import (
    cser_stepsize,
    dcgd_stepsize,
    double_squeeze_stepsize,
    ef_stepsize,
    gd_stepsize,
    psgd_stepsize,
    qsvrg_stepsize,
    terngrad_adam_defaults,
)
from commpress.theory.constants import (
    CONVENTIONS,
    ab_constants,
    aggregate_variance,
    contraction,
    permk_cq_constants,
    quantizer_ab_constants,
    quantizer_bits,
)
from commpress.theory.diana import (
    diana_alpha,
    diana_iterations,
    diana_stepsize,
    vr_diana_iterations,
    vr_diana_stepsize,
)
from commpress.theory.ef21 import (
    ef21_communication,
    ef21_rounds,
    ef21_sgd_complexity,
    ef21_stepsize,
    ef21_stepsize_pl,
    ef21_theta_beta,
)
from commpress.theory.iscc import (
    iscc_communication,
    iscc_corollary4_bound,
    iscc_corollary4_p,
    iscc_bits_per_round,
    iscc_stepsize,
    iscc_wab_constants,
    marina_corollary4_bound,
    weighted_marina_stepsize,
)
from commpress.theory.marina import (
    P_MIN,
    CommunicationComplexity,
    gd_communication,
    marina_bits_per_round,
    marina_bits_ratio_p,
    marina_communication,
    marina_improvement_factor,
    marina_M,
    marina_optimal_p,
    marina_rounds,
    marina_stepsize,
    marina_stepsize_original,
    marina_variance_term,
    normalized_improvement_factor,
)
from commpress.theory.neolithic import (
    RATE_METHODS,
    fcc_error_factor,
    linear_speedup_iterations,
    lower_bound_valid_from,
    neolithic_R,
    neolithic_stepsize,
    rate,
    rate_terms,
    transient_complexity,
)
from commpress.theory.quantization import (
    DNAnalysis,
    DNPlane,
    dn_equal_analysis,
    dn_plane,
    quantized_improvement_factor,
    quantized_marina_communication,
)
from commpress.theory.stepsizes import ALGORITHMS, ALIASES, FACTS, default_params, default_stepsize, stepsize_report

__all__ = [
    # dispatch
    "ALGORITHMS", "ALIASES", "FACTS", "default_params", "default_stepsize", "stepsize_report",
    # baselines
    "gd_stepsize", "psgd_stepsize", "dcgd_stepsize", "qsvrg_stepsize", "terngrad_adam_defaults",
    "ef_stepsize", "cser_stepsize", "double_squeeze_stepsize",
    # constants
    "CONVENTIONS", "ab_constants", "aggregate_variance", "contraction", "quantizer_ab_constants",
    "quantizer_bits", "permk_cq_constants",
    # MARINA
    "P_MIN", "CommunicationComplexity", "marina_M", "marina_stepsize", "marina_stepsize_original",
    "marina_variance_term", "marina_bits_per_round", "marina_bits_ratio_p", "marina_rounds",
    "marina_optimal_p", "marina_improvement_factor", "marina_communication", "gd_communication",
    "normalized_improvement_factor",
    # IQ vs CQ
    "DNAnalysis", "DNPlane", "quantized_improvement_factor", "quantized_marina_communication",
    "dn_equal_analysis", "dn_plane",
    # weighted MARINA / ISCC
    "weighted_marina_stepsize", "iscc_wab_constants", "iscc_stepsize", "iscc_bits_per_round",
    "iscc_corollary4_p", "iscc_communication", "iscc_corollary4_bound", "marina_corollary4_bound",
    # DIANA
    "diana_alpha", "diana_stepsize", "vr_diana_stepsize", "diana_iterations", "vr_diana_iterations",
    # EF21
    "ef21_theta_beta", "ef21_stepsize", "ef21_stepsize_pl", "ef21_rounds", "ef21_communication",
    "ef21_sgd_complexity",
    # lower bounds / NEOLITHIC
    "RATE_METHODS", "rate_terms", "rate", "transient_complexity", "lower_bound_valid_from",
    "linear_speedup_iterations", "fcc_error_factor", "neolithic_R", "neolithic_stepsize",
]

# The newer method families: one module each, its formulas listed in its own docstring; every
# public name of a family module is re-exported here.
from commpress.theory import (  # noqa: E402
    bidirectional,
    compression_limits,
    lazy,
    local_training,
    partial_participation,
    second_order,
    smoothness,
)

for _family in (bidirectional, partial_participation, lazy, local_training, second_order, smoothness,
                compression_limits):
    _clash = sorted(set(_family.__all__) & set(__all__))
    if _clash:  # one name, one formula: a family may not shadow another's
        raise ImportError(f"{_family.__name__} exports {_clash}, already exported by commpress.theory")
    globals().update({_name: getattr(_family, _name) for _name in _family.__all__})
    __all__ += _family.__all__
del _family, _clash
