"""Command-line ``type=`` functions: bad input is an argparse error before the command runs."""

from __future__ import annotations

import argparse

import pytest

from kafka_jobs.management.argtypes import positive_int, queue_name


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("12", 12)])
def test_positive_int_parses_whole_numbers_from_one(text: str, number: int) -> None:
    assert positive_int(text) == number


@pytest.mark.parametrize(("text", "match"), [("0", "must be an int >= 1, got 0"), ("-3", "got -3"), ("2.5", "whole")])
def test_positive_int_refuses_the_rest(text: str, match: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        positive_int(text)


def test_queue_name_accepts_a_topic_name_and_refuses_others() -> None:
    assert queue_name("billing.v2") == "billing.v2"
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a valid queue name: use 1-200 characters"):
        queue_name("no/slash")
