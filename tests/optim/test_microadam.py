"""MicroAdam (Modoranu et al., NeurIPS 2024, Alg. 1): the vectorised optimizer against a plain dense
reference of its update (error feedback, window wrap-around, blocks, bfloat16 storage), against AdamW
(density 1) and Adam (a small regression), its memory accounting, checkpoints and bad inputs."""

from __future__ import annotations

import io
import math
import tokenize
from pathlib import Path

import pytest
import torch

from commpress.errors import ConfigError, InputError, InputTypeError
from commpress.optim import MicroAdam, adam_state_bytes, microadam_state_bytes
from commpress.optim import microadam as ma

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ----------------------------------------------------------------------------- the dense reference
def reference(x0: torch.Tensor, grads: list[torch.Tensor], *, lr: float, betas=(0.9, 0.999), eps=1e-8,
              weight_decay=0.0, m: int, density=None, k=None, q: int, d_b: int, alpha=0.0,
              value_dtype=torch.bfloat16, error_feedback=True) -> torch.Tensor:
    """MicroAdam written out plainly: the window as m dense vectors, the error per block in loops."""
    d = x0.numel()
    x = x0.reshape(-1).float().clone()
    n_q = math.ceil(d / q)
    codes = torch.zeros(d)
    lo = torch.zeros(n_q, dtype=torch.bfloat16)
    hi = torch.zeros(n_q, dtype=torch.bfloat16)
    window = torch.zeros(m, d)

    def dequantize():
        out = torch.zeros(d)
        for b in range(n_q):
            sl = slice(b * q, min(d, (b + 1) * q))
            u = (hi[b].float() - lo[b].float()) / 15
            out[sl] = codes[sl] * u + lo[b].float()
        return out

    def quantize(a):
        for b in range(n_q):
            sl = slice(b * q, min(d, (b + 1) * q))
            lo[b], hi[b] = a[sl].min().to(torch.bfloat16), a[sl].max().to(torch.bfloat16)
            u = (hi[b].float() - lo[b].float()) / 15
            if u > 0:
                codes[sl] = torch.floor((a[sl] - lo[b].float()) / u + 0.5).clamp(0, 15)
            else:
                codes[sl] = 0.0

    for t, g in enumerate(grads, start=1):
        a = g.reshape(-1).float() + (dequantize() if error_feedback else 0.0)
        s = (t - 1) % m
        chosen = torch.zeros(d, dtype=torch.bool)
        for start in range(0, d, d_b):
            seg = a[start:start + d_b]
            kk = min(k, seg.numel()) if k is not None else math.ceil(round(density * seg.numel(), 9))
            top = torch.argsort(seg.abs(), descending=True)[:kk]
            chosen[start + top] = True
        window[s] = torch.where(chosen, a.to(value_dtype).float(), 0.0)
        a = torch.where(chosen, 0.0, a)
        quantize(a)
        x *= 1 - lr * weight_decay
        b1, b2 = betas
        m_hat, v_hat = torch.zeros(d), torch.zeros(d)
        for slot in range(min(t, m)):
            age = (t - 1 - slot) % m
            m_hat += b1 ** age * window[slot]
            v_hat += b2 ** age * window[slot] ** 2
        m_hat *= (1 - b1) / (1 - b1 ** t)
        v_hat *= (1 - b2) / (1 - b2 ** t)
        u = m_hat / (v_hat.sqrt() + eps)
        if alpha:
            e = dequantize()
            u += alpha * e
            quantize((1 - alpha) * e)
        x -= lr * u
    return x.reshape(x0.shape)


def run_microadam(x0, grads, device="cpu", **kw) -> torch.Tensor:
    p = torch.nn.Parameter(x0.clone().to(device))
    opt = MicroAdam([p], **kw)
    for g in grads:
        p.grad = g.clone().to(device)
        opt.step()
    return p.detach().cpu()


def gradients(shape, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) * (1 + t % 3) for t in range(steps)]


CASES = {
    # d = 70 in Top-K blocks 32 + 32 + 6 and quantisation blocks of 16 (+ 6); 10 steps through a window of 3
    "blocks, wrap-around": dict(shape=(7, 10), kw=dict(lr=0.01, m=3, density=0.1, quant_block=16, topk_block=32)),
    "k per block, weight decay": dict(shape=(45,), kw=dict(lr=0.02, m=4, k=3, quant_block=8, topk_block=20,
                                                          weight_decay=0.1, betas=(0.8, 0.99))),
    "densification": dict(shape=(30,), kw=dict(lr=0.01, m=2, density=0.2, quant_block=7, topk_block=30, alpha=0.3)),
    "float32 values": dict(shape=(5, 8), kw=dict(lr=0.01, m=5, density=0.15, quant_block=10, topk_block=64,
                                                 value_dtype=torch.float32)),
}


def ref_kwargs(kw: dict) -> dict:
    out = dict(kw)
    out["q"] = out.pop("quant_block")
    out["d_b"] = out.pop("topk_block")
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_dense_reference(case, device):
    c = CASES[case]
    x0 = torch.randn(c["shape"], generator=torch.Generator().manual_seed(1))
    grads = gradients(c["shape"], 10)
    ours = run_microadam(x0, grads, device, **c["kw"])
    ref = reference(x0, grads, **ref_kwargs(c["kw"]))
    assert torch.allclose(ours, ref, rtol=0, atol=2e-6), (ours - ref).abs().max()
    assert not torch.allclose(ours, x0, atol=1e-3)  # it moved


def test_error_feedback_and_window_matter(monkeypatch):
    """Negative controls: without the error feedback, or with ages that do not wrap around the
    window, the optimizer no longer matches the reference; the reference itself tells EF apart."""
    c = CASES["blocks, wrap-around"]
    x0 = torch.randn(c["shape"], generator=torch.Generator().manual_seed(1))
    grads = gradients(c["shape"], 10)
    ref = reference(x0, grads, **ref_kwargs(c["kw"]))
    no_ef = reference(x0, grads, **ref_kwargs(c["kw"]), error_feedback=False)
    assert (ref - no_ef).abs().max() > 1e-3

    with monkeypatch.context() as mp:
        mp.setattr(ma, "_error", lambda state, layout: torch.zeros(layout.d))
        broken = run_microadam(x0, grads, **c["kw"])
    assert (broken - ref).abs().max() > 1e-3
    assert torch.allclose(broken, no_ef, rtol=0, atol=2e-6)  # and it is exactly "no EF"

    def no_wrap(t, m, device):
        slots = torch.arange(m, device=device)
        return (t - 1 - slots).abs(), slots < min(t, m)

    with monkeypatch.context() as mp:
        mp.setattr(ma, "_window_ages", no_wrap)
        broken = run_microadam(x0, grads, **c["kw"])
    assert (broken - ref).abs().max() > 1e-4


def test_density_one_is_adamw():
    """k = d keeps the error at 0; with m >= T and float32 values the steps are AdamW's."""
    shape, steps = (6, 5), 8
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    grads = gradients(shape, steps)
    ours = run_microadam(x0, grads, lr=0.05, m=steps, density=1.0, weight_decay=0.1, value_dtype=torch.float32)
    p = torch.nn.Parameter(x0.clone())
    adamw = torch.optim.AdamW([p], lr=0.05, weight_decay=0.1)
    for g in grads:
        p.grad = g.clone()
        adamw.step()
    assert torch.allclose(ours, p.detach(), rtol=0, atol=1e-6)
    # bfloat16 window values: AdamW up to bf16 rounding of the gradients (relative 2^-8 per value)
    bf16 = run_microadam(x0, grads, lr=0.05, m=steps, density=1.0, weight_decay=0.1)
    assert torch.allclose(bf16, p.detach(), rtol=0, atol=steps * 0.05 * 2 ** -7)
    # a window shorter than the run forgets: no longer AdamW
    short = run_microadam(x0, grads, lr=0.05, m=2, density=1.0, weight_decay=0.1, value_dtype=torch.float32)
    assert (short - p.detach()).abs().max() > 1e-3


def test_reaches_adams_loss_on_a_regression(monkeypatch):
    """Least squares, 200 x 20 (+ bias), noisy targets, 400 full-batch steps with a linearly decaying
    learning rate (as in the paper's Llama-2 runs): MicroAdam with 10% density and m = 10 ends within 5%
    of Adam's loss (the tolerance of the paper's small-model comparison), Adam within 5% of the optimum.
    Negative control: a window whose ages do not wrap around misses by far."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 20, generator=gen)
    y = X @ torch.randn(20, 1, generator=gen) + 0.5 * torch.randn(200, 1, generator=gen)
    A = torch.cat([X, torch.ones(200, 1)], dim=1)
    best = 0.5 * ((A @ torch.linalg.lstsq(A, y).solution - y) ** 2).mean().item()
    steps = 400

    def train(make):
        torch.manual_seed(0)
        model = torch.nn.Linear(20, 1)
        opt = make(model.parameters())
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
        for _ in range(steps):
            loss = 0.5 * ((model(X) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        return (0.5 * ((model(X) - y) ** 2).mean()).item()

    adam = train(lambda p: torch.optim.Adam(p, lr=0.05))
    micro = train(lambda p: MicroAdam(p, lr=0.05, density=0.1, m=10))
    assert adam <= 1.05 * best
    assert micro <= 1.05 * adam, (micro, adam, best)

    def no_wrap(t, m, device):
        slots = torch.arange(m, device=device)
        return (t - 1 - slots).abs(), slots < min(t, m)

    monkeypatch.setattr(ma, "_window_ages", no_wrap)
    broken = train(lambda p: MicroAdam(p, lr=0.05, density=0.1, m=10))
    assert broken > 1.05 * adam, (broken, adam)


# ----------------------------------------------------------------------------- memory
@pytest.mark.parametrize("shape,kw", [
    ((1000, 30), dict(density=0.01)),                    # two Top-K blocks: 16384 + 13616
    ((33,), dict(k=4, quant_block=8)),                   # ceil(33/2) bytes of EF, 5 blocks of bounds
    ((7, 9), dict(density=0.1, quant_block=63, topk_block=10, m=3)),  # q divides d
    ((40_000,), dict(density=0.01, topk_block=40_000, quant_block=100_000)),  # int32 indices
    ((10, 10), dict(density=0.5, value_dtype=torch.float32)),
])
def test_memory_report_matches_the_state_tensors(shape, kw):
    p = torch.nn.Parameter(torch.zeros(shape))
    opt = MicroAdam([p], **kw)
    before = opt.memory_report()
    assert before.state_bytes == 0 and before.formula_bytes > 0
    p.grad = torch.randn(shape)
    opt.step()
    rep = opt.memory_report()
    held = sum(v.numel() * v.element_size() for v in opt.state[p].values() if isinstance(v, torch.Tensor))
    assert rep.state_bytes == held == rep.formula_bytes == rep.total == before.formula_bytes
    d, m, k = p.numel(), opt.param_groups[0]["m"], rep.tensors[0].k
    q = opt.param_groups[0]["quant_block"]
    index_bytes = 2 if min(d, opt.param_groups[0]["topk_block"]) <= 32768 else 4
    value_bytes = opt.param_groups[0]["value_dtype"].itemsize
    assert held == m * k * (index_bytes + value_bytes) + math.ceil(d / 2) + 4 * math.ceil(d / q)
    assert rep.adam_bytes == 8 * d == adam_state_bytes([p])
    assert "MicroAdam / Adam" in str(rep)


def test_memory_formula_and_adams_state():
    # the paper's figure: density 1%, m = 10, large q -> 0.9 d bytes, against Adam's 8 d
    d = 1_000_000
    assert microadam_state_bytes(d, m=10, k=d // 100, q=100_000) == 0.9 * d + 40
    model = torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.Linear(8, 3))
    adam = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 12)).sum().backward()
    adam.step()
    moments = sum(v.numel() * v.element_size() for s in adam.state.values() for key, v in s.items() if key != "step")
    assert moments == adam_state_bytes(model.parameters()) == 8 * sum(p.numel() for p in model.parameters())
    opt = MicroAdam(model.parameters())
    opt.step()  # gradients are still there
    rep = opt.memory_report()
    assert rep.adam_bytes == moments and rep.state_bytes == rep.total < moments
    assert [t.numel for t in rep.tensors] == [96, 8, 24, 3]


# ----------------------------------------------------------------------------- checkpoints
def test_state_dict_round_trip_resumes_identically():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.Tanh(), torch.nn.Linear(20, 1))
    data = [(torch.randn(8, 10), torch.randn(8, 1)) for _ in range(10)]
    kw = dict(lr=0.01, m=3, density=0.1, quant_block=16, topk_block=64)

    def steps(model, opt, batches):
        for x, y in batches:
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    opt = MicroAdam(model.parameters(), **kw)
    steps(model, opt, data[:4])
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    steps(model, opt, data[4:])

    buf.seek(0)
    saved = torch.load(buf)
    clone = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.Tanh(), torch.nn.Linear(20, 1))
    clone.load_state_dict(saved["model"])
    opt2 = MicroAdam(clone.parameters(), lr=1.0, m=7, k=2)  # the settings come back from the checkpoint
    opt2.load_state_dict(saved["opt"])
    assert opt2.param_groups[0]["m"] == 3 and opt2.param_groups[0]["density"] == 0.1
    for p in clone.parameters():
        assert {k: v.dtype for k, v in opt2.state[p].items() if isinstance(v, torch.Tensor)} == {
            "indices": torch.int16, "values": torch.bfloat16, "ef": torch.uint8,
            "ef_min": torch.bfloat16, "ef_max": torch.bfloat16}
    steps(clone, opt2, data[4:])
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(opt.state.values(), opt2.state.values()):
        assert a["step"] == b["step"] == 10
        assert all(torch.equal(a[key], b[key]) for key in ("indices", "values", "ef", "ef_min", "ef_max"))


def test_bfloat16_parameters_and_parameter_groups():
    w = torch.nn.Parameter(torch.randn(50, dtype=torch.bfloat16))
    b = torch.nn.Parameter(torch.randn(5))
    opt = MicroAdam([{"params": [w]}, {"params": [b], "k": 2}], lr=0.1, density=0.1)
    w.grad, b.grad = torch.randn(50, dtype=torch.bfloat16), torch.randn(5)
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt.step()
    assert w.dtype == torch.bfloat16 and int((w != w0).sum()) == 5     # ceil(0.1 * 50) entries move
    assert int((b != b0).sum()) == 2 and opt.param_groups[1]["density"] is None
    assert opt.memory_report().tensors[1].k == 2


def test_scalar_and_empty_parameters():
    a, b = torch.nn.Parameter(torch.tensor(1.0)), torch.nn.Parameter(torch.zeros(0, 3))
    opt = MicroAdam([a, b], lr=0.1)
    a.grad, b.grad = torch.tensor(0.5), torch.zeros(0, 3)
    opt.step()
    assert a.detach().item() == pytest.approx(0.9) and b.shape == (0, 3) and not opt.state[b]
    rep = opt.memory_report()
    assert [t.k for t in rep.tensors] == [1, 0] and rep.tensors[1].formula_bytes == 0
    assert rep.state_bytes == rep.formula_bytes == 10 * 1 * 4 + 1 + 4


# ----------------------------------------------------------------------------- bad input
BAD = [
    (dict(k=0), ConfigError, "k >= 1"),
    (dict(k=-3), ConfigError, "k >= 1"),
    (dict(k=2.5), ConfigError, "k >= 1"),
    (dict(m=0), ConfigError, "m >= 1"),
    (dict(m=-1), ConfigError, "m >= 1"),
    (dict(density=0.0), ConfigError, "0 < density <= 1"),
    (dict(density=1.5), ConfigError, "0 < density <= 1"),
    (dict(density=0.1, k=3), ConfigError, "density or k, not both"),
    (dict(quant_block=0), ConfigError, "quant_block >= 1"),
    (dict(topk_block=0), ConfigError, "topk_block"),
    (dict(lr=-1.0), ConfigError, "lr >= 0"),
    (dict(betas=(0.9, 1.0)), ConfigError, "0 <= beta < 1"),
    (dict(eps=-1e-8), ConfigError, "eps >= 0"),
    (dict(weight_decay=-0.1), ConfigError, "weight_decay >= 0"),
    (dict(alpha=2.0), ConfigError, "0 <= alpha <= 1"),
    (dict(value_dtype=torch.int8), ConfigError, "bfloat16, float16 or float32"),
]


@pytest.mark.parametrize("kw,error,text", BAD)
def test_bad_settings_give_one_clear_error(kw, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        MicroAdam([torch.nn.Parameter(torch.zeros(3))], **kw)


def test_bad_parameters_and_gradients():
    with pytest.raises(InputTypeError, match="floating-point parameters.*torch.int64"):
        MicroAdam([torch.zeros(3, dtype=torch.int64)])
    with pytest.raises(InputTypeError, match="floating-point parameters"):
        MicroAdam([torch.zeros(3, dtype=torch.complex64)])
    with pytest.raises(InputError, match="'meta' device"):
        MicroAdam([torch.nn.Parameter(torch.zeros(3, device="meta"))])
    with pytest.raises(ConfigError, match="m >= 1"):
        MicroAdam([{"params": [torch.nn.Parameter(torch.zeros(3))], "m": 0}])
    emb = torch.nn.Embedding(10, 4, sparse=True)
    opt = MicroAdam(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(InputError, match="sparse gradients"):
        opt.step()


def test_one_code_path_for_every_device():
    """No device branches in the optimizer's code (strings and comments aside): GPU runs the same ops."""
    src = Path(ma.__file__).read_text(encoding="utf-8")
    names = [tok.string for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type == tokenize.NAME]
    assert not {"cuda", "is_cuda", "meta"} & set(names)


def test_benchmark_script_runs_on_the_cpu(capsys):
    """Smoke test of benchmarks/microadam.py (the GPU timing script) at its --quick size on the CPU."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "microadam.py"
    spec = importlib.util.spec_from_file_location("bench_microadam", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--device", "cpu", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "step time ratio MicroAdam / AdamW" in out and "state bytes: MicroAdam" in out
