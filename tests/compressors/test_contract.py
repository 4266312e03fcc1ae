"""The contract every registered compressor keeps (DESIGN.md "Conformance suites").

The checks are :func:`commpress.testing.check_compressor`'s exact properties, run here on every
name in ``cp.compressors.names()`` with default parameters: bits == 8 * len(payload);
decode(encode(X)) == apply(X)[0]; subset encode/decode gives exactly the full-batch rows, bits
and bytes; dtype and device kept; zero rows -> zero rows without NaN; n = 1 and d = 1 work; the
same seed gives the same output and another seed another output (unless the class declares
``deterministic = True``); NaN/Inf, wrong rank, wrong dtype, bad seeds are rejected with
CommpressError; truncated, over-long and random payloads are rejected with PayloadError; theory()
reports a class and the bits a call sends. The statistical properties (unbiasedness, omega, delta,
AB) run in ``tests/testing/test_check_compressor.py``.
"""

from __future__ import annotations

import pytest

import commpress as cp
from commpress.errors import CommpressError
from commpress.testing import EXACT_PROPERTIES, check_compressor

NAMES = cp.compressors.names()
#: Batches of the exact checks: several clients, one client, d = 1, n > d, n | d and not, ...
SHAPES = [(5, 33), (6, 37), (1, 5), (4, 1), (3, 64), (9, 4), (7, 40), (5, 3), (2, 9), (3, 29)]
#: Randomized configurations beyond the defaults (a deterministic default wrapping a random part).
RANDOMIZED_EXTRA = [("fcc", {"inner": "randk"}), ("compose", {"outer": "qsgd", "inner": "randk"})]


def test_registry_lists_the_catalog():
    for name in ["identity", "iq", "cq"]:
        assert name in NAMES
    with pytest.raises(CommpressError, match="unknown compressor"):
        cp.compressors.make("cqq")
    with pytest.raises(CommpressError, match="no parameter"):
        cp.compressors.make("cq", level=2)


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_compressor_keeps_the_exact_contract(name):
    check_compressor(cp.compressors.make(name), n=5, d=33, shapes=SHAPES, properties=EXACT_PROPERTIES)


@pytest.mark.parametrize("name,params", RANDOMIZED_EXTRA, ids=[n for n, _ in RANDOMIZED_EXTRA])
def test_randomized_configurations_of_deterministic_defaults_use_the_seed(name, params):
    C = cp.compressors.make(name, **params)
    assert not C.deterministic
    check_compressor(C, n=5, d=33, properties=["same_seed_same_output", "seed_is_used"])


def test_deterministic_is_declared_by_the_classes_that_draw_nothing():
    declared = {name for name in NAMES if cp.compressors.make(name).deterministic}
    assert declared == {"identity", "sign", "topk", "fcc", "biased_rounding"}  # FCC's default inner is TopK


@pytest.mark.parametrize("name", sorted(set(NAMES) - {"identity", "sign", "topk", "fcc", "biased_rounding"}))
def test_negative_control_a_compressor_that_ignores_its_seed_fails_the_seed_check(name, monkeypatch):
    # every call of this instance runs with seed 0 whatever it is given: the check must fail
    C = cp.compressors.make(name)
    context = C._context
    monkeypatch.setattr(C, "_context", lambda X, seed, clients, n: context(X, 0, clients, n))
    report = check_compressor(C, n=5, d=33, properties=["seed_is_used"], raise_on_failure=False)
    assert not report["seed_is_used"].passed and "ignores its seed" in report["seed_is_used"].message
