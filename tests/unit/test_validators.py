"""The rules shared by settings, routes, job options and commands (one definition each)."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_jobs.validators import (
    MAX_QUEUE_NAME,
    int_at_least_rule,
    is_int_at_least,
    is_number,
    is_queue_name,
    is_topic_prefix,
)


@pytest.mark.parametrize("name", ["default", "a", "billing.v2", "x_y-z", "A" * MAX_QUEUE_NAME])
def test_queue_names_kafka_accepts_as_topics(name: str) -> None:
    assert is_queue_name(name)


@pytest.mark.parametrize("name", ["", "has space", "a/b", "ü", "default\n", "A" * (MAX_QUEUE_NAME + 1), None, 7])
def test_queue_names_that_cannot_be_topics(name: Any) -> None:
    assert not is_queue_name(name)


@pytest.mark.parametrize(
    ("prefix", "valid"), [("", True), ("staging.", True), ("a b", False), ("p.\n", False), (1, False)]
)
def test_topic_prefix_may_be_empty_but_only_of_topic_characters(prefix: Any, valid: bool) -> None:
    assert is_topic_prefix(prefix) is valid


@pytest.mark.parametrize(
    ("value", "minimum", "valid"),
    [(0, 0, True), (1, 1, True), (0, 1, False), (-1, 0, False), (True, 1, False), (False, 0, False), (1.0, 1, False)],
)
def test_int_at_least_refuses_bools_floats_and_smaller_ints(value: Any, minimum: int, valid: bool) -> None:
    assert is_int_at_least(value, minimum) is valid


def test_int_at_least_rule_says_what_is_expected() -> None:
    assert int_at_least_rule(1) == "an int >= 1"


@pytest.mark.parametrize(
    ("value", "valid"),
    [(0, True), (1.5, True), (-2, True), (True, False), (float("inf"), False), (float("nan"), False), ("1", False)],
)
def test_a_number_is_a_finite_int_or_float_not_a_bool(value: Any, valid: bool) -> None:
    assert is_number(value) is valid
