"""Property test: every decoder meets random, truncated and mutated bytes with PayloadError
(or a clean decode of a well-formed message), never a crash, NaN or garbage allocation.

Hypothesis draws the bytes; the verdict is :func:`commpress.testing.check_hostile_decode`, the one
``check_compressor``'s seeded fuzzing uses.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import commpress as cp
from commpress.testing import check_hostile_decode

NAMES = cp.compressors.names()


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_decoder_survives_hostile_bytes(name, data):
    C = cp.compressors.make(name)
    n, d = 3, 21
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    good = C.encode(X, 4)
    mode = data.draw(st.sampled_from(["random", "truncate", "mutate", "extend"]))
    payloads = list(good)
    row = data.draw(st.integers(0, n - 1))
    if mode == "random":
        payloads[row] = data.draw(st.binary(max_size=64))
    elif mode == "truncate":
        payloads[row] = payloads[row][: data.draw(st.integers(0, max(0, len(payloads[row]) - 1)))]
    elif mode == "extend":
        payloads[row] = payloads[row] + data.draw(st.binary(min_size=1, max_size=16))
    else:
        if not payloads[row]:
            return
        raw = bytearray(payloads[row])
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
        payloads[row] = bytes(raw)
    # a CommpressError, or a well-formed message that decodes to finite rows of the right shape
    check_hostile_decode(C, payloads, 4, d, what=f"a {mode} payload in row {row}")
