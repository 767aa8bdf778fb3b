"""Per-job retry and discard rules, as Rails' ``retry_on`` / ``discard_on``.

A job class lists rules; the worker asks the policy what to do with an exception. Rules declared on a
subclass are consulted before its parents' (the most specific declaration wins, as in Rails).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import random
from collections.abc import Callable, Iterable
from typing import Any

from .exceptions import InvalidJob
from .validators import int_at_least_rule, is_int_at_least, is_number

Wait = float | int | dt.timedelta | str | Callable[[int], float]
WAIT_STRATEGIES = ("exponentially_longer", "polynomially_longer")


@dataclasses.dataclass(frozen=True)
class RetryOn:
    """Retry a job that raised one of ``exceptions``, up to ``attempts`` executions in all."""

    exceptions: tuple[type[BaseException], ...]
    wait: Wait = 3.0
    attempts: int = 5
    jitter: float = 0.15

    def delay(self, executions: int) -> float:
        """Seconds to wait before execution number ``executions + 1``."""
        wait = self.wait
        if callable(wait):
            base = float(wait(executions))
        elif wait == "exponentially_longer":
            base = float(2**executions)
        elif wait == "polynomially_longer":
            base = float(executions**4 + 2)
        elif isinstance(wait, dt.timedelta):
            base = wait.total_seconds()
        else:
            base = float(wait)  # type: ignore[arg-type]
        return base + random.uniform(0, base * self.jitter)


def retry_on(*exceptions: type[BaseException], wait: Wait = 3.0, attempts: int = 5, jitter: float = 0.15) -> RetryOn:
    """Declare a retry rule: ``retry_on = [retry_on(TimeoutError, wait=5, attempts=3)]``."""
    return RetryOn(tuple(exceptions), wait, attempts, jitter)


class Action(enum.Enum):
    """What the worker does with a failed job."""

    RETRY = "retry"  # retry after the rule's delay
    DISCARD = "discard"  # log and mark consumed
    ESCALATE = "escalate"  # no rule applies (or its attempts are spent): the route's policy decides


@dataclasses.dataclass(frozen=True)
class Decision:
    """The policy's answer for one failure."""

    action: Action
    delay: float = 0.0
    rule: RetryOn | None = None


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """The retry and discard rules of one job class, then (``parent``) those of the classes it inherits."""

    retry_rules: tuple[RetryOn, ...] = ()
    discard: tuple[type[BaseException], ...] = ()
    parent: RetryPolicy | None = None

    def extended(self, retry_rules: Iterable[RetryOn], discard: Iterable[type[BaseException]]) -> RetryPolicy:
        """Return a policy whose new rules (discard and retry alike) take precedence over these."""
        retry_rules, discard = tuple(retry_rules), tuple(discard)
        if not retry_rules and not discard:
            return self
        return RetryPolicy(retry_rules, discard, self)

    def decide(self, exc: BaseException, executions: int) -> Decision:
        """Decide for ``exc`` raised by execution number ``executions`` (1 for the first run).

        A class's own rules are consulted before its parents' (within one class, discard_on first).
        """
        if self.discard and isinstance(exc, self.discard):
            return Decision(Action.DISCARD)
        for rule in self.retry_rules:
            if isinstance(exc, rule.exceptions):
                if executions < rule.attempts:
                    return Decision(Action.RETRY, rule.delay(executions), rule)
                return Decision(Action.ESCALATE, rule=rule)
        if self.parent is not None:
            return self.parent.decide(exc, executions)
        return Decision(Action.ESCALATE)


def _check_exceptions(owner: str, what: str, exceptions: Iterable[Any]) -> tuple[type[BaseException], ...]:
    result = tuple(exceptions)
    if not result:
        raise InvalidJob(f"{owner}.{what} names no exception class.")
    for exc in result:
        if not (isinstance(exc, type) and issubclass(exc, Exception)) or issubclass(exc, MemoryError):
            raise InvalidJob(
                f"{owner}.{what}: {exc!r} is not an Exception subclass (SystemExit, KeyboardInterrupt and "
                "MemoryError are critical and never retried or discarded)."
            )
    return result


def parse_retry_on(owner: str, rules: Any) -> tuple[RetryOn, ...]:
    """Validate a class's ``retry_on`` declaration."""
    if isinstance(rules, RetryOn):
        rules = (rules,)
    parsed = []
    for rule in rules:
        if not isinstance(rule, RetryOn):
            raise InvalidJob(f"{owner}.retry_on must list retry_on(...) rules, got {rule!r}.")
        _check_exceptions(owner, "retry_on", rule.exceptions)
        if not is_int_at_least(rule.attempts, 1):
            raise InvalidJob(f"{owner}.retry_on attempts must be {int_at_least_rule(1)}, got {rule.attempts!r}.")
        wait = rule.wait
        valid_number = is_number(wait) and wait >= 0
        if not (valid_number or callable(wait) or isinstance(wait, dt.timedelta) or wait in WAIT_STRATEGIES):
            raise InvalidJob(
                f"{owner}.retry_on wait must be seconds >= 0, a timedelta, a callable(executions) or one of "
                f"{WAIT_STRATEGIES}, got {wait!r}."
            )
        if not (is_number(rule.jitter) and 0 <= rule.jitter <= 1):
            raise InvalidJob(f"{owner}.retry_on jitter must be between 0 and 1, got {rule.jitter!r}.")
        parsed.append(rule)
    return tuple(parsed)


def parse_discard_on(owner: str, exceptions: Any) -> tuple[type[BaseException], ...]:
    """Validate a class's ``discard_on`` declaration (an exception class or a list of them)."""
    if isinstance(exceptions, type):
        exceptions = (exceptions,)
    if not exceptions:
        return ()
    return _check_exceptions(owner, "discard_on", exceptions)
