"""check_algorithm passes every registered method and names the property a broken one breaks."""

from __future__ import annotations

import pytest

import commpress as cp
import commpress.algorithms  # noqa: F401
from commpress.algorithms.ef21 import EF21, EF21State
from commpress.algorithms.marina import MARINA
from commpress.testing import ALGORITHM_PROPERTIES, ConformanceError, check_algorithm
from commpress.testing._algorithm import default_problem

from tests.algorithms._cases import params_for

PROBLEM = default_problem()


@pytest.mark.parametrize("name", cp.algorithms.names())
def test_every_registered_algorithm_passes(name):
    # one small configuration per method (a compressor that suits it, gamma = 0.1 / L_minus) on
    # check_algorithm's own problem: least squares with l2, 4 clients, d = 8
    report = check_algorithm(name, problem=PROBLEM, params=params_for(name, PROBLEM),
                             randomized=name not in ("gd", "lag"))
    assert [r.name for r in report] == list(ALGORITHM_PROPERTIES)
    assert report.passed and not any(r.skipped for r in report)


def test_defaults_and_theoretical_stepsizes_pass_or_skip_what_they_cannot_know():
    # MARINA's theoretical p on this problem is 1 (dense rounds only): the inferred seed check skips
    report = check_algorithm("marina", params={"compressor": "cq"})
    assert report.passed and report["seed_is_used"].skipped
    assert "randomized=True" in report["seed_is_used"].message


# ---------------------------------------------------------------------------- broken methods
class InPlaceEF21(EF21):
    """Updates the client estimators of the state it was given in place (``g_i += c``)."""

    def step(self, state: EF21State) -> EF21State:
        t = state.t
        x = state.x - self.gamma * self._down(state.g, t)
        C = self.scale * self._up(self._grads(x, t) - state.g_i, self.compressor, t)
        g_i = state.g_i
        g_i += C
        return EF21State(x=x, g_i=g_i, g=state.g + self.network.mean(C), t=t + 1)


class OffTheBooksMARINA(MARINA):
    """Compresses the gradient differences itself and only averages through the network: the
    compressed rounds never reach the ledger."""

    def _compressed_mean(self, D, t):
        D_hat, _ = self.compressor.apply(D, self._seed(t, "uplink"))
        return self.network.mean(D_hat)


BROKEN = [
    (InPlaceEF21, {"compressor": "cq", "gamma": 0.01}, "step_is_pure", "it changed the field 'g_i'"),
    (OffTheBooksMARINA, {"compressor": "cq", "p": 0.3, "gamma": 0.01}, "ledger_bits", "the ledger undercounts"),
]


@pytest.mark.parametrize("cls,params,prop,words", BROKEN, ids=[c.__name__ for c, *_ in BROKEN])
def test_a_broken_method_fails_naming_the_property(cls, params, prop, words):
    with pytest.raises(ConformanceError) as info:
        check_algorithm(cls, params=params)
    text = str(info.value)
    print(text)
    assert f"- {prop}: " in text and words in text and "Replay: check_algorithm(" in text
    report = info.value.report
    assert not report[prop].passed and report["builds"].passed and report["converges"].passed


def test_a_method_that_ignores_its_run_seed_fails():
    class SeedlessMARINA(MARINA):
        def _seed(self, t, role, *more):
            return cp.derive_seed(0, t, role, *more)  # every run draws run seed 0's randomness

    report = check_algorithm(SeedlessMARINA, params={"compressor": "cq", "p": 0.3, "gamma": 0.01},
                             properties=["seed_is_used"], randomized=True, raise_on_failure=False)
    assert not report.passed and "it ignores its seed" in report["seed_is_used"].message
