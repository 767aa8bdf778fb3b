"""The one clock of enqueueing and running: aware UTC times, and how long until a due time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kafka_jobs import clock


def test_now_is_aware_utc_even_without_use_tz(settings: Any) -> None:
    settings.USE_TZ = False

    assert clock.now().utcoffset() == dt.timedelta(0)


def test_seconds_until_counts_down_to_the_due_time_and_never_below_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    monkeypatch.setattr(clock, "now", lambda: start)

    assert clock.seconds_until(start + dt.timedelta(seconds=90)) == 90.0
    assert clock.seconds_until(start - dt.timedelta(hours=1)) == 0.0
    assert clock.seconds_until(None) == 0.0
