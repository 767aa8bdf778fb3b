"""retry_on / discard_on: what the policy decides for a failure, wait strategies, declaration errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kafka_jobs import InvalidJob, Job, retry_on
from kafka_jobs.retry import Action, Decision, RetryOn, RetryPolicy


class ParentRetryJob(Job):
    abstract = True
    retry_on = [retry_on(ConnectionError, wait=10, attempts=3, jitter=0)]
    discard_on = [LookupError]


class ChildRetryJob(ParentRetryJob):
    retry_on = [retry_on(ConnectionResetError, wait=1, attempts=5, jitter=0), retry_on(KeyError, wait=2, jitter=0)]

    def perform(self) -> None:
        pass


class DiscardAllParentJob(Job):
    abstract = True
    discard_on = Exception


class RetryTimeoutsChildJob(DiscardAllParentJob):
    retry_on = retry_on(TimeoutError, wait=0, attempts=2)

    def perform(self) -> None:
        pass


class PlainJob(Job):
    def perform(self) -> None:
        pass


# decide() ------------------------------------------------------------------------------------------------


def test_discard_on_match_discards() -> None:
    assert ChildRetryJob.retry_policy.decide(IndexError("gone"), 1) == Decision(Action.DISCARD)


def test_retry_within_attempts_retries_with_the_rule_delay() -> None:
    decision = ChildRetryJob.retry_policy.decide(ConnectionRefusedError(), 2)

    assert decision.action is Action.RETRY
    assert decision.delay == 10
    assert decision.rule is not None
    assert decision.rule.exceptions == (ConnectionError,)


def test_retry_escalates_when_attempts_are_spent() -> None:
    policy = ChildRetryJob.retry_policy

    assert policy.decide(ConnectionRefusedError(), 2).action is Action.RETRY
    spent = policy.decide(ConnectionRefusedError(), 3)
    assert spent.action is Action.ESCALATE
    assert spent.rule is not None  # a rule applied: the route knows retries are spent


def test_unmatched_exception_escalates_without_a_rule() -> None:
    assert ChildRetryJob.retry_policy.decide(ValueError(), 1) == Decision(Action.ESCALATE)
    assert PlainJob.retry_policy.decide(ValueError(), 1) == Decision(Action.ESCALATE)


def test_subclass_rules_are_consulted_before_the_parents() -> None:
    decision = ChildRetryJob.retry_policy.decide(ConnectionResetError(), 3)

    assert decision.action is Action.RETRY  # the child's rule (5 attempts), not the parent's (3)
    assert decision.delay == 1


def test_subclass_retry_rule_wins_over_a_parent_discard() -> None:
    policy = RetryTimeoutsChildJob.retry_policy

    assert policy.decide(TimeoutError(), 1).action is Action.RETRY
    assert policy.decide(ValueError(), 1).action is Action.DISCARD


def test_subclass_retry_rule_wins_over_a_parent_discard_even_when_spent() -> None:
    assert RetryTimeoutsChildJob.retry_policy.decide(TimeoutError(), 2).action is Action.ESCALATE


def test_child_rule_order_first_match_wins() -> None:
    # KeyError is also a LookupError, which the parent discards: the child's retry_on comes first.
    decision = ChildRetryJob.retry_policy.decide(KeyError("k"), 1)

    assert decision.action is Action.RETRY
    assert decision.delay == 2


def test_rules_of_the_parent_are_unchanged_by_the_subclass() -> None:
    parent = ParentRetryJob.retry_policy

    assert parent.decide(ConnectionResetError(), 3).action is Action.ESCALATE
    assert parent.decide(KeyError("k"), 1).action is Action.DISCARD


def test_empty_policy_escalates() -> None:
    assert RetryPolicy().decide(RuntimeError(), 1) == Decision(Action.ESCALATE)


# Wait strategies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "executions", "expected"),
    [
        (3, 1, 3.0),
        (0.5, 4, 0.5),
        (0, 1, 0.0),
        (dt.timedelta(minutes=2), 1, 120.0),
        ("exponentially_longer", 1, 2.0),
        ("exponentially_longer", 3, 8.0),
        ("polynomially_longer", 1, 3.0),
        ("polynomially_longer", 2, 18.0),
        (lambda executions: executions * 10, 3, 30.0),
    ],
)
def test_wait_strategy_gives_the_base_delay(wait: Any, executions: int, expected: float) -> None:
    assert retry_on(RuntimeError, wait=wait, jitter=0).delay(executions) == expected


@pytest.mark.parametrize("jitter", [0.15, 0.5, 1.0])
def test_jitter_adds_between_zero_and_jitter_times_the_base(jitter: float) -> None:
    rule = retry_on(RuntimeError, wait=10, jitter=jitter)
    delays = [rule.delay(1) for _ in range(300)]

    assert all(10 <= d <= 10 * (1 + jitter) for d in delays)
    assert len(set(delays)) > 1


def test_zero_jitter_is_exact() -> None:
    assert {retry_on(RuntimeError, wait=4, jitter=0).delay(2) for _ in range(20)} == {4.0}


def test_retry_on_defaults() -> None:
    rule = retry_on(RuntimeError)

    assert rule == RetryOn((RuntimeError,), wait=3.0, attempts=5, jitter=0.15)


# Invalid declarations ------------------------------------------------------------------------------------


def define(**attrs: Any) -> type[Job]:
    def perform(self: Job) -> None:
        pass

    return type("InvalidRetryJob", (Job,), {"__module__": __name__, "perform": perform, **attrs})


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"retry_on": [retry_on()]}, "names no exception class"),
        ({"retry_on": [retry_on(ValueError, attempts=0)]}, "attempts must be an int >= 1"),
        ({"retry_on": [retry_on(ValueError, attempts=True)]}, "attempts must be an int >= 1"),
        ({"retry_on": [retry_on(ValueError, attempts=2.5)]}, "attempts must be an int >= 1"),
        ({"retry_on": [retry_on(ValueError, wait=-1)]}, "wait must be seconds >= 0"),
        ({"retry_on": [retry_on(ValueError, wait="slowly")]}, "wait must be seconds >= 0"),
        ({"retry_on": [retry_on(ValueError, wait=True)]}, "wait must be seconds >= 0"),
        ({"retry_on": [retry_on(ValueError, jitter=2)]}, "jitter must be between 0 and 1"),
        ({"retry_on": [retry_on(ValueError, jitter=-0.1)]}, "jitter must be between 0 and 1"),
        ({"retry_on": [retry_on("ValueError")]}, "is not an Exception subclass"),
        ({"retry_on": [retry_on(SystemExit)]}, "critical"),
        ({"retry_on": [retry_on(KeyboardInterrupt)]}, "critical"),
        ({"retry_on": [ValueError]}, "must list retry_on"),
        ({"discard_on": [MemoryError]}, "is not an Exception subclass"),
        ({"discard_on": [BaseException]}, "is not an Exception subclass"),
        ({"discard_on": ["ValueError"]}, "is not an Exception subclass"),
        ({"discard_on": [ValueError(1)]}, "is not an Exception subclass"),
    ],
    ids=repr,
)
def test_invalid_declaration_raises_invalid_job_at_class_definition(attrs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidJob, match=match):
        define(**attrs)


def test_single_rule_and_single_exception_need_no_list() -> None:
    assert RetryTimeoutsChildJob.retry_policy.decide(TimeoutError(), 1).action is Action.RETRY
    assert DiscardAllParentJob.retry_policy.decide(ValueError(), 1).action is Action.DISCARD
