"""argparse ``type=`` functions shared by the management commands (invalid input fails before handle())."""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """Parse a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number
