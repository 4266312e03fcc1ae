"""A user-written compressor, with public names only: 8-bit stochastic rounding.

It is checked with the library's conformance suite, then run with MARINA at the theoretical
stepsize and probability p, which MARINA derives from the constants the compressor declares in
``theory(n, d)``. Run: ``python examples/int8_compressor.py``.
"""

import torch

import commpress as cp
from commpress.compressors import F32, UINT, Compressor, CompressorTheory, Field, f32_up, padded_bits, uniform_layout
from commpress.testing import check_compressor


@cp.compressors.register("int8")
class Int8(Compressor):
    r"""8-bit stochastic rounding of :math:`x / s`, :math:`s = \|x\|_\infty`: :math:`\mathcal C(x)_j = s(2q_j/255 - 1)`.

    :math:`q_j \in \{0..255\}` rounds :math:`u_j = 127.5 (x_j / s + 1)` up with probability
    :math:`u_j - \lfloor u_j \rfloor`, so :math:`\mathbb E\,\mathcal C(x) = x`. Class: unbiased; a coordinate's
    rounding variance is at most :math:`(s / 255)^2 \le \|x\|^2 / 255^2`, so :math:`\omega = d / 255^2`.
    Payload per client: a float32 scale and d 8-bit codes, 32 + 8d bits.
    """

    def layout(self, ctx, message):
        return uniform_layout([Field("scale", F32, 32, 1), Field("codes", UINT, 8, ctx.d)], ctx.rows)

    def encode_message(self, X, ctx):
        scale = f32_up(X.abs().amax(dim=1, keepdim=True))  # float32, >= max_j |x_j|
        u = (X / scale.clamp_min(1e-30) + 1) * 127.5  # in [0, 255]
        codes = torch.floor(u + ctx.private_rand("int8/round", dtype=X.dtype)).clamp(0, 255)
        return {"scale": scale, "codes": codes.to(torch.int64)}

    def decode_message(self, message, ctx):
        return message["scale"].to(ctx.dtype) * (message["codes"].to(ctx.dtype) / 127.5 - 1)

    def theory(self, n, d):
        omega = d / 255**2
        return CompressorTheory("unbiased", omega=omega, delta=None, A=omega / n, B=0.0, bits=padded_bits(32 + 8 * d))


if __name__ == "__main__":
    report = check_compressor(Int8())  # raises ConformanceError, naming each property that fails
    print(f"check_compressor: {sum(r.passed for r in report)}/{len(report)} properties hold")

    problem = cp.problems.make("quadratic", n_clients=10, dim=100, seed=0)
    history = cp.simulate(problem, "marina", compressor=Int8(), iterations=300)  # no stepsize, no p: theory's
    params = history.params
    assert params["stepsize_source"] == "theory" and params["p_source"] == "theory", params
    ratio = float(history.grad_norm_sq[-1] / history.grad_norm_sq[0])
    print(f"MARINA + int8: gamma = {params['gamma']:.4g} and p = {params['p']:.4g} from theory; "
          f"||grad f||^2 fell by {ratio:.2e} in 300 rounds, {float(history.bits_up[-1]):.4g} bits up per client")
    assert ratio < 1e-3, ratio
