"""Results of a conformance run: one :class:`CheckResult` per property, gathered in a report."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator

from commpress.errors import ConfigError


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one property.

    ``name``: the property (e.g. ``"bits_equal_payload"``); ``passed``: True when it holds or does
    not apply (then ``skipped`` is True and ``message`` says why); ``message``: in plain words, what
    was expected, what was measured and how to replay it.
    """

    name: str
    passed: bool
    message: str
    skipped: bool = False

    def __str__(self) -> str:
        status = "skipped" if self.skipped else "passed" if self.passed else "FAILED"
        return f"{self.name}: {status}. {self.message}"


@dataclass
class ConformanceReport:
    """Every property checked on one subject, in order. Iterate over it, index it by position or
    by property name, or ask ``report.passed`` / ``report.failures``."""

    subject: str
    replay: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key: int | str) -> CheckResult:
        if isinstance(key, str):
            for r in self.results:
                if r.name == key:
                    return r
            raise KeyError(f"no property {key!r} in this report; it has {[r.name for r in self.results]}.")
        return self.results[key]

    def __str__(self) -> str:
        head = f"{self.subject}: {sum(r.passed for r in self.results)}/{len(self.results)} properties hold"
        return "\n".join([head, *(f"  {r}" for r in self.results)])

    def raise_for_failures(self) -> None:
        """Raise one :class:`ConformanceError` listing every failed property (nothing if none failed)."""
        if not self.passed:
            raise ConformanceError(self)


class ConformanceError(AssertionError):
    """A subject broke properties of its contract; ``.report`` holds the full :class:`ConformanceReport`."""

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        failed = report.failures
        lines = [f"{report.subject} fails {len(failed)} of {len(report)} conformance properties:"]
        lines += [f"- {r.name}: {r.message}" for r in failed]  # each message ends with the replay call
        super().__init__("\n".join(lines))


class Fail(AssertionError):
    """A property does not hold; the message says what was expected and what was measured."""


class Skip(Exception):
    """A property does not apply to this subject; the message says why."""


def select(properties: object, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    """The properties to run, in the suite's order (None: all); unknown names are a ConfigError."""
    if properties is None:
        return known
    if isinstance(properties, str):
        properties = (properties,)
    chosen = tuple(properties)  # type: ignore[arg-type]
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ConfigError(f"{what} has no property {unknown[0]!r}; its properties are: {', '.join(known)}.")
    return tuple(p for p in known if p in chosen)


def run_property(name: str, check: Callable[[], str], replay: str) -> CheckResult:
    """Run one property: its returned text is the passing message; ``Fail``/``Skip`` or any other
    exception (the subject crashed) become the result."""
    try:
        detail = check()
    except Skip as why:
        return CheckResult(name, True, f"not applicable: {why}", skipped=True)
    except Fail as why:
        return CheckResult(name, False, f"{why} Replay: {replay}")
    except Exception as err:  # the subject itself crashed: a failure of this property, with where
        where = traceback.extract_tb(err.__traceback__)[-1]
        return CheckResult(
            name, False,
            f"raised {type(err).__name__}: {err} (at {where.filename}:{where.lineno} in {where.name}). Replay: {replay}",
        )
    return CheckResult(name, True, detail or "holds.")
