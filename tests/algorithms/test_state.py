"""Every method: explicit state that survives torch.save/torch.load, pure step, no row-order assumptions.

The checks are :func:`commpress.testing.check_algorithm`'s (one implementation for our methods and
users'), run on one small configuration per registered method (``_cases.CASES``).
"""

from __future__ import annotations

import pytest

import commpress as cp
import commpress.algorithms  # noqa: F401

from tests.algorithms._cases import CASES, check

#: check_algorithm's properties checked here (the ledger is test_bits', convergence test_convergence's).
STATE_PROPERTIES = ("builds", "step_is_pure", "save_reload", "client_order", "seed_is_used")


def test_every_registered_algorithm_has_a_case():
    covered = {c.split("/")[0] for c in CASES}
    assert set(cp.algorithms.names()) <= covered


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_is_explicit_pure_reloadable_and_keyed_by_client(case):
    # builds: a frozen dataclass state; step_is_pure: a new state, its input untouched, frozen;
    # save_reload: torch.save/torch.load (weights_only) then 4 more rounds give identical states;
    # client_order: clients held in another order (PermutedNetwork) give identical iterates and
    # ledgers; seed_is_used: other run seeds give other iterates (GD: the same), the negative
    # control that makes "identical" above not vacuous.
    check(case, steps=4, properties=STATE_PROPERTIES)
