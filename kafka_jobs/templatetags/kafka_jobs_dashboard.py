"""Template filters of the dashboard's pages (``{% load kafka_jobs_dashboard %}``)."""

from __future__ import annotations

import datetime as dt

from django import template

register = template.Library()


@register.filter
def when(value: str | None) -> dt.datetime | str | None:
    """Parse an ISO 8601 time written in a header (e.g. ``kj-dlq-failed-at``), for the ``date`` filter.

    Text that is not such a time is returned as it is, so a damaged header still shows.
    """
    if not value:
        return value
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return value


@register.filter
def relative(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """Return "in 25s", "12s ago", or Django's "in 4 minutes" / "3 hours ago" beyond two minutes."""
    from django.utils.timesince import timesince, timeuntil

    if moment is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 120:
        return f"in {seconds:.0f}s" if seconds >= 0 else f"{-seconds:.0f}s ago"
    return f"in {timeuntil(moment, now)}" if seconds >= 0 else f"{timesince(moment, now)} ago"
