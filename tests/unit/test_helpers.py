"""The test helpers themselves: bounded waits and topic names."""

from __future__ import annotations

import itertools
import re

import pytest

from tests.helpers import MAX_TOPIC_NAME, unique_topic_name, wait_for


def test_wait_for_returns_the_first_truthy_value() -> None:
    calls = itertools.count()

    assert wait_for(lambda: next(calls) >= 2 and "done", timeout=5, interval=0) == "done"


def test_wait_for_raises_the_message_after_the_timeout() -> None:
    with pytest.raises(AssertionError, match=r"the worker never started \(waited 0.1 s\)"):
        wait_for(lambda: False, timeout=0.1, message="the worker never started")


def test_wait_for_builds_a_callable_message_at_failure_time() -> None:
    state = ["before"]

    def message() -> str:
        return f"state was {state[0]}"

    state[0] = "after"
    with pytest.raises(AssertionError, match="state was after"):
        wait_for(lambda: None, timeout=0, message=message)


@pytest.mark.parametrize(
    ("test_name", "label", "expected"),
    [
        ("test_x", "", r"t-test_x-[0-9a-f]{8}"),
        ("test_x[a b/c-1]", "dlq", r"t-test_x-a-b-c-1-dlq-[0-9a-f]{8}"),
        ("[]", "", r"t-[0-9a-f]{8}"),
        ("x" * 500, "", rf"t-x{{{MAX_TOPIC_NAME - 11}}}-[0-9a-f]{{8}}"),
    ],
)
def test_unique_topic_name_is_legal_unique_and_bounded(test_name: str, label: str, expected: str) -> None:
    name = unique_topic_name(test_name, label)

    assert re.fullmatch(expected, name), name
    assert re.fullmatch(r"[a-zA-Z0-9._-]{1,200}", name)
    assert unique_topic_name(test_name, label) != name
