"""check_compressor passes every registered compressor and names the property a broken one breaks.

Each broken compressor below is a plausible user mistake, written with public names only.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import commpress as cp
from commpress.compressors import Compressor
from commpress.compressors.identity import Identity
from commpress.compressors.iq import IQ
from commpress.compressors.randk import RandK
from commpress.testing import COMPRESSOR_PROPERTIES, ConformanceError, check_compressor

NAMES = cp.compressors.names()
#: Configurations whose statistics the defaults leave out (DRIVE's Hadamard omega is a limit;
#: ISCC's default inner is DRIVE) or that exercise other code paths.
EXTRA = [
    ("drive", {"rotation": "haar"}), ("eden", {"rotation": "haar"}), ("iscc", {"inner": "iq", "tau": 2}),
    ("fcc", {"inner": "randk"}), ("fcc", {"inner": "iq", "unbiased_scaling": False}),
    ("compose", {"outer": "qsgd", "inner": "randk"}), ("randk", {"scaled": False}),
    ("permk", {"scaled": False}), ("sign", {"scaled": False}),
]


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_compressor_passes(name):
    report = check_compressor(cp.compressors.make(name), n=4, d=16, trials=1000)
    assert [r.name for r in report] == list(COMPRESSOR_PROPERTIES)
    assert report.passed


@pytest.mark.parametrize("name,params", EXTRA, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in EXTRA])
def test_other_configurations_pass(name, params):
    check_compressor(cp.compressors.make(name, **params), n=4, d=16, trials=1000)


# ---------------------------------------------------------------------------- broken compressors
class ForgotScaling(RandK):
    """RandK without the d/k scaling (contractive), declared unbiased with RandK's omega."""

    def __init__(self) -> None:
        super().__init__(k=2, scaled=False)

    def theory(self, n, d):
        return RandK(k=2).theory(n, d)


class OverPromisedOmega(RandK):
    """RandK with k = 2 declaring the omega of k = 4: its variance exceeds what it declares."""

    def __init__(self) -> None:
        super().__init__(k=2)

    def theory(self, n, d):
        return dataclasses.replace(RandK(k=4).theory(n, d), bits=super().theory(n, d).bits)


class ForgotTheHeader(IQ):
    """Reports the bits of its codes but not of its 32-bit float header."""

    def apply(self, X, seed, *, clients=None, n=None):
        X_hat, bits = super().apply(X, seed, clients=clients, n=n)
        return X_hat, bits - 32


class FixedSeed(RandK):
    """Draws its subset from seed 0 whatever the round's seed."""

    def encode_message(self, X, ctx):
        return super().encode_message(X, dataclasses.replace(ctx, seed=0))

    def decode_message(self, message, ctx):
        return super().decode_message(message, dataclasses.replace(ctx, seed=0))


class PadsShortPayloads(Identity):
    """A lenient decoder: pads or cuts every payload to the length it expects."""

    def decode(self, payloads, seed, d, **kw):
        width = 4 * d
        return super().decode([bytes(p[:width]).ljust(width, b"\0") for p in payloads], seed, d, **kw)


class DeclaredDeterministic(RandK):
    deterministic = True


BROKEN = [
    (ForgotScaling(), "unbiased", "expected E C(x) = x"),
    (OverPromisedOmega(), "variance_bound", "(declared omega = 3)"),
    (ForgotTheHeader(), "bits_equal_payload", "expected bits == 8 * len(payload)"),
    (FixedSeed(), "seed_is_used", "it ignores its seed"),
    (PadsShortPayloads(), "rejects_malformed_payload", "truncated by one byte"),
    (DeclaredDeterministic(), "seed_is_used", "declares deterministic = True"),
]


@pytest.mark.parametrize("C,prop,words", BROKEN, ids=[type(c).__name__ for c, _, _ in BROKEN])
def test_a_broken_compressor_fails_naming_the_property(C, prop, words):
    with pytest.raises(ConformanceError) as info:
        check_compressor(C, n=4, d=16, trials=1000)
    text = str(info.value)
    print(text)
    assert f"- {prop}: " in text and words in text
    assert "Replay: check_compressor(" in text and "seed=0" in text
    report = info.value.report
    assert not report[prop].passed
    # the exact properties a mistake does not touch still pass: the report singles out the culprit
    assert report["shapes_and_dtypes"].passed and report["rejects_bad_input"].passed


def test_report_without_raising_lists_every_property():
    report = check_compressor(OverPromisedOmega(), trials=400, raise_on_failure=False)
    assert not report.passed
    assert {r.name for r in report.failures} == {"variance_bound", "ab_inequality"}
    assert "variance_bound: FAILED" in str(report)


def test_properties_can_be_selected_and_unknown_ones_are_refused():
    report = check_compressor("randk", properties=["bits_equal_payload", "seed_is_used"])
    assert [r.name for r in report] == ["bits_equal_payload", "seed_is_used"]
    with pytest.raises(cp.ConfigError, match="no property 'bits'"):
        check_compressor("randk", properties=["bits"])
    with pytest.raises(cp.InputTypeError, match="Compressor"):
        check_compressor(object())


def test_a_crashing_compressor_is_a_failure_with_its_exception():
    class Crashes(Compressor):
        def layout(self, ctx, message):
            raise RuntimeError("boom")

        def encode_message(self, X, ctx):
            return {}

        def decode_message(self, message, ctx):
            return torch.zeros(ctx.rows, ctx.d, dtype=ctx.dtype)

    report = check_compressor(Crashes(), raise_on_failure=False)
    assert "raised RuntimeError: boom" in report["bits_equal_payload"].message
    assert "declares no theory" in report["unbiased"].message and report["unbiased"].skipped
    assert not report["theory_declared"].passed
