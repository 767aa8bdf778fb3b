"""The time jobs are enqueued and fall due: one clock, so enqueueing and running agree (and tests can set it)."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """Return the current time, aware and in UTC even with ``USE_TZ = False`` (it is written into messages)."""
    return dt.datetime.now(dt.UTC)


def seconds_until(when: dt.datetime | None) -> float:
    """Return how long until ``when`` (an aware time), 0 if it has passed or is ``None`` (not scheduled)."""
    if when is None:
        return 0.0
    return max(0.0, (when - now()).total_seconds())
