"""Every hint an algorithm's error gives ("pass X=...") names a parameter that algorithm takes, and
following the hints leads to a run: with compressors that state no omega, no delta or no AB
constants, the theory's "pass delta=..." (true for ``commpress.theory``'s functions) must not
reach an algorithm's user, who cannot pass it."""

from __future__ import annotations

import inspect
import re

import pytest

import commpress as cp

HINT = re.compile(r"\bpass\s+(\w+)=", re.IGNORECASE)
VALUES = {"gamma": ("stepsize", 1e-3), "p": ("p", 0.5), "alpha": ("alpha", 0.5), "R": ("R", 2),
          "compressor": ("compressor", "cq"), "epoch_length": ("epoch_length", 10),
          "zeta": ("zeta", 1.0), "a": ("a", 0.5), "b": ("b", 0.5)}
# compressors with missing constants: combinatorial (no delta), contractive (no omega, no AB),
# plus one that states everything
COMPRESSORS = ["iscc", "topk", "fcc", "sign", "sketch", "cq", None]


def _taken(algorithm: str) -> set[str]:
    init = cp.algorithms.get(algorithm).__init__
    return {p.name for p in inspect.signature(init).parameters.values()} | {"batch_size", "noise"}


@pytest.mark.parametrize("algorithm", cp.algorithms.names())
def test_following_every_hint_leads_to_a_run(algorithm):
    glm = ("vr_diana", "qsvrg", "dasha_page", "basis_learn", "bl2")  # finite sums; GLMs (Basis Learn's data basis)
    problem = cp.problems.make("logreg" if algorithm in glm else "quadratic", dim=8, n_clients=4)
    uses = cp.algorithms.get(algorithm).uses_compressor
    followed = 0
    for compressor in COMPRESSORS if uses else [None]:
        kwargs = {} if compressor is None else {"compressor": compressor}
        for _ in range(4):
            try:
                cp.simulate(problem, algorithm, iterations=1, **kwargs)
                break
            except cp.ConfigError as err:
                message = str(err)
                hinted = re.findall(r"\b(\w+)=(?:\.\.\.|<|'|\s|$)", message[HINT.search(message).start():]) \
                    if HINT.search(message) else []
                assert hinted, f"{algorithm} + {compressor}: an error without a way out: {message}"
                assert set(hinted) <= _taken(algorithm), f"{algorithm} takes no {hinted}, yet says: {message}"
                new = dict(VALUES[name] for name in hinted if name in VALUES)
                assert new and not new.items() <= kwargs.items(), f"{algorithm}: the hint repeats: {message}"
                kwargs.update(new)
                followed += 1
        else:
            pytest.fail(f"{algorithm} + {compressor}: still failing after following its hints: {kwargs}")
    if algorithm in ("ef21", "marina", "dcgd", "diana", "cser"):
        assert followed, f"{algorithm}: expected at least one compressor without the constants it needs"
