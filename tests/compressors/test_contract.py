"""The contract every registered compressor keeps (DESIGN.md "Conformance suites").

For each name in ``cp.compressors.names()`` with default parameters:
bits == 8 * len(payload); decode(encode(X)) == apply(X)[0]; subset encode/decode gives exactly
the full-batch rows; dtype and device kept; zero rows -> zero rows without NaN; n = 1 and d = 1
work; NaN/Inf, wrong rank, wrong dtype, bad seeds are rejected with CommpressError; truncated
and over-long payloads are rejected with PayloadError.
"""

from __future__ import annotations

import pytest
import torch

import commpress as cp
from commpress.errors import CommpressError, InputError, InputTypeError, PayloadError

NAMES = cp.compressors.names()
SHAPES = [(6, 37), (1, 5), (4, 1), (3, 64), (9, 4)]


def _batch(n: int, d: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1000 * n + d)
    return torch.randn(n, d, generator=g, dtype=dtype)


def _roundtrip(C, X, seed, **kw):
    X_hat, bits = C.apply(X, seed, **kw)
    payloads = C.encode(X, seed, **kw)
    X_dec = C.decode(payloads, seed, X.shape[1], dtype=X.dtype, **kw)
    return X_hat, bits, payloads, X_dec


def test_registry_lists_the_catalog():
    for name in ["identity", "iq", "cq"]:
        assert name in NAMES
    with pytest.raises(CommpressError, match="unknown compressor"):
        cp.compressors.make("cqq")
    with pytest.raises(CommpressError, match="no parameter"):
        cp.compressors.make("cq", level=2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_bits_are_the_payload_and_decode_is_apply(name, shape, dtype):
    C = cp.compressors.make(name)
    X = _batch(*shape, dtype=dtype)
    X_hat, bits, payloads, X_dec = _roundtrip(C, X, seed=7)
    assert X_hat.shape == X.shape and X_hat.dtype == dtype and X_hat.device == X.device
    assert bits.dtype == torch.int64 and bits.shape == (shape[0],)
    assert len(payloads) == shape[0] and all(isinstance(p, bytes) for p in payloads)
    assert bits.tolist() == [8 * len(p) for p in payloads]
    torch.testing.assert_close(X_dec, X_hat, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=1e-7)
    assert torch.isfinite(X_hat).all()


#: Compressors whose output does not depend on the seed with default parameters (FCC's default
#: inner compressor is TopK). Every other registered compressor draws random numbers and must
#: use its seed; the seed test checks in turn that these give one output for every seed.
DETERMINISTIC = {"identity", "sign", "topk", "fcc"}
#: Randomized configurations beyond the defaults (a deterministic default wrapping a random part).
RANDOMIZED_EXTRA = [("fcc", {"inner": "randk"}), ("compose", {"outer": "qsgd", "inner": "randk"})]
OTHER_SEEDS = (12, 13, 14, 15, 16, 2**63 - 1)


def _assert_seed_contract(C, X, randomized: bool) -> None:
    """The same seed gives identical outputs and payloads; for a randomized compressor other seeds
    give other outputs (at least one of six differs: even PermK on n = 5 clients, 120 equally
    likely outcomes, repeats one output six times with probability 120^-5); a deterministic one
    gives the same output for every seed."""
    a, bits_a = C.apply(X, 11)
    b, bits_b = C.apply(X, 11)
    assert torch.equal(a, b) and torch.equal(bits_a, bits_b), "same seed, different outputs"
    assert C.encode(X, 11) == C.encode(X, 11), "same seed, different payloads"
    others = [C.apply(X, s)[0] for s in OTHER_SEEDS]
    differ = sum(not torch.equal(a, o) for o in others)
    if randomized:
        assert differ > 0, f"{C!r} gave the same output for seeds 11 and {OTHER_SEEDS}: it ignores its seed"
    else:
        assert differ == 0, f"{C!r} is listed as deterministic but its output depends on the seed"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result_other_seed_other_result(name):
    _assert_seed_contract(cp.compressors.make(name), _batch(5, 33), randomized=name not in DETERMINISTIC)


@pytest.mark.parametrize("name,params", RANDOMIZED_EXTRA, ids=[n for n, _ in RANDOMIZED_EXTRA])
def test_randomized_configurations_of_deterministic_defaults_use_the_seed(name, params):
    _assert_seed_contract(cp.compressors.make(name, **params), _batch(5, 33), randomized=True)


def test_seed_exemptions_name_registered_compressors():
    assert DETERMINISTIC <= set(NAMES), f"stale exemption: {sorted(DETERMINISTIC - set(NAMES))}"


@pytest.mark.parametrize("name", sorted(set(NAMES) - DETERMINISTIC))
def test_negative_control_a_compressor_that_ignores_its_seed_fails_the_seed_check(name, monkeypatch):
    # every call of this instance runs with seed 0 whatever it is given: the check must fail
    C = cp.compressors.make(name)
    context = C._context
    monkeypatch.setattr(C, "_context", lambda X, seed, clients, n: context(X, 0, clients, n))
    with pytest.raises(AssertionError, match="ignores its seed"):
        _assert_seed_contract(C, _batch(5, 33), randomized=True)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(7, 40), (5, 3), (2, 9)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_subset_rows_equal_full_batch_rows(name, shape):
    C = cp.compressors.make(name)
    n, d = shape
    X = _batch(n, d)
    X_full, bits_full = C.apply(X, 5)
    for idx in ([n - 1, 0], [1], list(range(n))[::-1]):
        idx_t = torch.tensor(idx)
        X_sub, bits_sub = C.apply(X[idx_t], 5, clients=idx_t, n=n)
        assert torch.equal(X_sub, X_full[idx_t]), f"apply subset {idx}"
        assert torch.equal(bits_sub, bits_full[idx_t])
        mine = C.encode(X[idx_t], 5, clients=idx_t, n=n)
        dec = C.decode(mine, 5, d, clients=idx_t, n=n, dtype=X.dtype)
        torch.testing.assert_close(dec, X_full[idx_t], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_zero_rows_compress_to_zero(name):
    C = cp.compressors.make(name)
    X = _batch(4, 20)
    X[1] = 0.0
    X_hat, bits, payloads, X_dec = _roundtrip(C, X, 3)
    assert torch.isfinite(X_hat).all()
    if not C.correlated:
        assert torch.equal(X_hat[1], torch.zeros(20, dtype=X.dtype))
    Z = torch.zeros(3, 8, dtype=torch.float64)
    Z_hat, _, _, Z_dec = _roundtrip(C, Z, 3)
    assert torch.equal(Z_hat, torch.zeros_like(Z)) and torch.equal(Z_dec, torch.zeros_like(Z))


BAD_INPUTS = [
    ("nan", lambda X: X.index_put_((torch.tensor([0]), torch.tensor([1])), torch.tensor(float("nan"), dtype=X.dtype)), InputError),
    ("inf", lambda X: X.index_put_((torch.tensor([1]), torch.tensor([0])), torch.tensor(float("inf"), dtype=X.dtype)), InputError),
    ("1-d", lambda X: X[0], InputError),
    ("3-d", lambda X: X[None], InputError),
    ("int", lambda X: X.to(torch.int64), InputTypeError),
    ("half", lambda X: X.to(torch.float16), InputTypeError),
    ("numpy", lambda X: X.numpy(), InputTypeError),
    ("empty", lambda X: X[:, :0], InputError),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_clearly(name, case):
    _, make_bad, error = case
    C = cp.compressors.make(name)
    X = make_bad(_batch(3, 6))
    with pytest.raises(error) as info:
        C.apply(X, 0)
    assert len(str(info.value)) > 20
    with pytest.raises(error):
        C.encode(X, 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "3", True])
def test_bad_seed_is_rejected(name, seed):
    with pytest.raises(CommpressError):
        cp.compressors.make(name).apply(_batch(2, 4), seed)


@pytest.mark.parametrize("name", NAMES)
def test_truncated_and_extended_payloads_are_rejected(name):
    C = cp.compressors.make(name)
    X = _batch(3, 29)
    payloads = C.encode(X, 9)
    for row in range(3):
        if len(payloads[row]) == 0:
            continue
        cut = list(payloads)
        cut[row] = cut[row][:-1]
        with pytest.raises(PayloadError):
            C.decode(cut, 9, 29, dtype=X.dtype)
    longer = list(payloads)
    longer[0] = longer[0] + b"\x00"
    with pytest.raises(PayloadError):
        C.decode(longer, 9, 29, dtype=X.dtype)
    with pytest.raises(CommpressError):
        C.decode(payloads[:2] + [b"\x00" * 10_000], 9, 29)


@pytest.mark.parametrize("name", NAMES)
def test_theory_reports_class_and_bits(name):
    C = cp.compressors.make(name)
    t = C.theory(8, 64)
    assert t.kind in ("unbiased", "contractive", "correlated", "combinatorial", "biased")
    assert t.bits > 0
    if t.kind in ("unbiased", "correlated"):
        assert t.omega is not None and t.omega >= 0
    if t.kind == "contractive":
        assert t.delta is not None and 0 < t.delta <= 1
    # the expected bits match what a call sends, for data-independent sizes
    X = _batch(8, 64)
    _, bits = C.apply(X, 1)
    if t.extras.get("bits_exact", True) and C.correlated is False and t.kind != "combinatorial":
        assert abs(float(bits.double().mean()) - t.bits) <= 8 * max(1, 0.02 * t.bits / 8) or t.extras.get("bits_data_dependent")
