"""Fused ``apply`` of IQ, CQ, dithering/QSGD and natural compression (issue 12, point 4).

``apply`` takes the base class's ``_apply_fused`` hook: eager torch in place (IQ, CQ) or one
compiled kernel per call with the uniforms computed inline (``commpress._rng.fused_uniform_map``,
switched by ``COMMPRESS_COMPILE`` / ``_rng.set_compile``). Every path must equal the generic
``decode_message(encode_message(X))`` bit for bit (float bits compared as integers, so -0.0 and
+0.0 differ): the kernels' source is checked eagerly over many configurations (cheap), and
compiled once over a few (one compilation per kernel and dtype).
"""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

import commpress as cp
from commpress import _rng
from commpress.compressors import _range_quantizer
from commpress.compressors.iq import IQ

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CONFIGS = [
    ("iq", {}), ("iq", {"levels": 3}), ("iq", {"range": "minmax"}), ("iq", {"levels": 5, "range": "fixed"}),
    ("cq", {}), ("cq", {"levels": 3, "range": "minmax"}), ("cq", {"range": "fixed", "low": -2.0, "high": 0.5}),
    ("dithering", {}), ("qsgd", {"s": 3}), ("dithering", {"p": 1, "s": 5}), ("dithering", {"p": "inf", "s": 2}),
    ("block", {"block_size": 64}), ("block", {"block_size": 100, "s": 3}), ("natural", {}),
]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bits(a), _bits(b))


def _generic(C, X, seed, clients=None, n=None) -> torch.Tensor:
    ctx = C._context(X, seed, clients, n)
    return C.decode_message(C._checked_encode(X, ctx), ctx)


def _batch(n: int, d: int, dtype: torch.dtype) -> torch.Tensor:
    """Gaussian rows with zeros, -0.0, subnormals, a power of two and (n > 1) a zero row."""
    X = torch.randn(n, d, dtype=dtype, generator=torch.Generator().manual_seed(n * d)) * 3
    X[0, :7] = torch.tensor([0.0, -0.0, 1e-39, -(2.0**-130), 4.0, -0.5, 1e-3], dtype=dtype)
    if n > 1:
        X[-1] = 0
    return X


def _cases(shapes=((5, 1001), (3, 64), (1, 7))):
    for dtype in (torch.float32, torch.float64):
        for n, d in shapes:
            X = _batch(n, d, dtype)
            rows = torch.tensor([n - 1, 0]) if n > 1 else torch.tensor([0])
            yield X, rows, n


def _check_all(configs, shapes=((5, 1001), (3, 64), (1, 7))) -> None:
    """apply (with whatever switch is set) == the generic path computed eagerly, full and subset rows."""
    for name, kwargs in configs:
        C = cp.compressors.make(name, **kwargs)
        for X, rows, n in _cases(shapes):
            old = _rng.set_compile(False)
            try:
                full, part = _generic(C, X, 11), _generic(C, X[rows], 11, clients=rows, n=n)
                payloads = C.encode(X, 11)
                decoded = C.decode(payloads, 11, X.shape[1], dtype=X.dtype)
            finally:
                _rng.set_compile(old)
            assert C.encode(X, 11) == payloads, (name, kwargs, X.dtype, X.shape, "encode")
            assert _same(C.decode(payloads, 11, X.shape[1], dtype=X.dtype), decoded), (name, kwargs, "decode")
            assert _same(_generic(C, X, 11), full), (name, kwargs, X.dtype, X.shape, "encode_message")
            got, bits = C.apply(X, 11)
            assert _same(got, full), (name, kwargs, X.dtype, X.shape)
            assert torch.equal(bits, C._bits(C.layout(C._context(X, 11, None, None), None), n))
            got_part, _ = C.apply(X[rows], 11, clients=rows, n=n)
            assert _same(got_part, part), (name, kwargs, X.dtype, X.shape, "clients")
            assert _same(got_part, got[rows])


@pytest.fixture
def eager_kernels(monkeypatch):
    """The fused kernels run uncompiled: their source is checked without the compile time."""
    monkeypatch.setattr(_rng, "_compile", True)
    monkeypatch.setattr(_rng, "_fused_kernels", {})
    monkeypatch.setattr(_rng, "_fused_failed", set())
    monkeypatch.setattr(_rng, "FUSED_MIN_SIZE", 0)
    monkeypatch.setattr(_rng.torch, "compile", lambda fn, **kwargs: fn)
    # the random draws of the generic reference stay eager (set_compile(False) around them)


def test_uniform_at_is_private_rand():
    for dtype in (torch.float32, torch.float64):
        for d in (1, 2, 999, 1000):
            for clients in (None, torch.tensor([4, 1])):
                expected = _rng.private_rand(5, "t", 6, (d,), clients, dtype=dtype)
                keys = _rng._row_keys(5, "t", 6, clients).unsqueeze(1)
                got = _rng.uniform_at(keys, _rng._column_index(d, torch.device("cpu")), dtype)
                assert _same(got, expected)


def test_eager_apply_equals_the_generic_path():
    _check_all(CONFIGS)


def test_fused_kernels_equal_the_generic_path(eager_kernels):
    _check_all(CONFIGS)
    assert not _rng._fused_failed
    dither = cp.compressors._dither_base
    assert set(_rng._fused_kernels) == {
        *_range_quantizer._KERNELS.values(), _range_quantizer._iq_level_kernel, _range_quantizer._cq_level_kernel,
        _range_quantizer._decode_kernel, _range_quantizer._decode_where_kernel, cp.compressors.natural._natural_kernel,
        cp.compressors.natural._natural_encode_kernel, cp.compressors.natural._natural_decode_kernel,
        dither._dither_kernel, dither._dither_encode_kernel, dither._dither_decode_kernel}


def test_the_equality_check_has_power(eager_kernels, monkeypatch):
    """Negative control: uniforms that swap the two halves of each word (a plausible slip) are caught."""
    real = _rng.uniform_at

    def swapped(keys, col, dtype):
        return real(keys, col ^ 1, dtype) if dtype == torch.float32 else real(keys, col + 1, dtype)

    for module in ("_range_quantizer", "_dither_base", "natural"):
        monkeypatch.setattr(f"commpress.compressors.{module}.uniform_at", swapped)
    for name, kwargs in (("iq", {}), ("cq", {"levels": 3}), ("qsgd", {}), ("natural", {})):
        with pytest.raises(AssertionError):
            _check_all([(name, kwargs)], shapes=((5, 1001),))


def test_variants_and_subclasses_take_the_generic_path(eager_kernels):
    calls = []
    real = _rng.fused_uniform_map
    _rng_map = lambda *a, **k: calls.append(a[0]) or real(*a, **k)  # noqa: E731
    X = _batch(4, 300, torch.float32)
    for module in (_range_quantizer, cp.compressors._dither_base, cp.compressors.natural):
        module.fused_uniform_map = _rng_map
    try:
        class Shifted(IQ):  # a plugin's own thresholds: the fused kernel must not replace them
            def _thresholds(self, ctx):
                return super()._thresholds(ctx).mul_(0.5)

        for C in (Shifted(), cp.compressors.make("qsgd", elias=True), cp.compressors.make("block", block_size=64),
                  cp.compressors.make("natural_dithering"), cp.compressors.make("terngrad")):
            got, bits = C.apply(X, 3)
            assert _same(got, _generic(C, X, 3)) and not calls, type(C).__name__
    finally:
        for module in (_range_quantizer, cp.compressors._dither_base, cp.compressors.natural):
            module.fused_uniform_map = real


@pytest.mark.filterwarnings("ignore:commpress. compiled random draws unavailable")
@pytest.mark.filterwarnings("ignore:commpress. compiled kernel _natural_(en|de)code_kernel unavailable")
def test_a_failing_compiler_falls_back_to_the_same_values(monkeypatch):
    def broken(fn, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(_rng, "FUSED_MIN_SIZE", 0)
    monkeypatch.setattr(_rng, "_fused_kernels", {})
    monkeypatch.setattr(_rng, "_fused_failed", set())
    monkeypatch.setattr(_rng, "_compiled", {})
    monkeypatch.setattr(_rng.torch, "compile", broken)
    X = _batch(3, 50, torch.float64)
    C = cp.compressors.make("natural")
    expected = _generic(C, X, 1)
    old = _rng.set_compile(True)
    try:
        with pytest.warns(RuntimeWarning, match="natural_kernel unavailable"):  # and the draws' own warning
            got, _ = C.apply(X, 1)
        assert _same(got, expected)
        assert cp.compressors.natural._natural_kernel in _rng._fused_failed
        # the draws turned their own switch off; on again (with working draws), the failed kernel
        # is not tried again: no second warning
        _rng.set_compile(True)
        monkeypatch.setattr(_rng, "_compiled", {"f64": _rng._kernel_f64})
        failed = set(_rng._fused_failed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _same(C.apply(X, 1)[0], expected)
        assert not [w for w in caught if any(f"{k.__qualname__} unavailable" in str(w.message) for k in failed)]
    finally:
        _rng.set_compile(old)


def test_overflowing_headers_raise_as_before(eager_kernels):
    big = torch.full((2, 8), 3e38, dtype=torch.float64)
    for name, error in (("iq", cp.errors.NonFiniteError), ("qsgd", cp.errors.InputError)):
        with pytest.raises(error):
            cp.compressors.make(name).apply(big, 0)
    with pytest.raises(cp.errors.InputError):
        cp.compressors.make("natural").apply(big * 1e10, 0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit notices from inductor's imports
def test_compiled_kernels_equal_the_generic_path():
    """The compiled kernels (C++ from inductor here, Triton on a GPU): the same bits, for apply,
    the message and the wire. Every kernel compiled once per dtype it is checked in (~3 s each with
    a cold inductor cache); d odd (the last word's high half unused), rows >= 2, a subset of clients."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler: torch.compile's CPU backend is unavailable")
    old = _rng.set_compile(True)
    try:
        for name, kwargs, dtype, wire in (
            ("iq", {}, torch.float32, True), ("iq", {"range": "minmax"}, torch.float32, True),
            ("cq", {"levels": 3, "range": "minmax"}, torch.float32, True), ("qsgd", {"s": 3}, torch.float32, True),
            ("natural", {}, torch.float32, True), ("natural", {}, torch.float64, False),
        ):
            C = cp.compressors.make(name, **kwargs)
            X = _batch(5, 1001, dtype)
            rows = torch.tensor([4, 0])
            _rng.set_compile(False)
            full, part = _generic(C, X, 11), _generic(C, X[rows], 11, clients=rows, n=5)
            payloads = C.encode(X, 11) if wire else None
            decoded = C.decode(payloads, 11, 1001, dtype=dtype) if wire else None
            _rng.set_compile(True)
            assert _same(C.apply(X, 11)[0], full), (name, kwargs, dtype)
            assert _same(C.apply(X[rows], 11, clients=rows, n=5)[0], part), (name, kwargs, dtype, "clients")
            for device in DEVICES[1:]:  # Triton kernels: the same bits as the CPU's eager path
                assert _same(C.apply(X.to(device), 11)[0].cpu(), full), (name, kwargs, dtype, device)
            if wire:
                assert _same(_generic(C, X, 11), full), (name, kwargs, "message")
                assert C.encode(X, 11) == payloads, (name, kwargs, "encode")
                assert _same(C.decode(payloads, 11, 1001, dtype=dtype), decoded), (name, kwargs, "decode")
        assert _rng._compile and not _rng._fused_failed, "compiling failed and the fused paths fell back to eager"
    finally:
        _rng.set_compile(old)
