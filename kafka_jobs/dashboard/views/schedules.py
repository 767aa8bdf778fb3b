"""Scheduled and recurring pages: what waits in the delay tiers, and each recurring schedule's next and last fire.

Both read what ``manage.py kafkascheduled`` reads (``delays.inspection``, ``recurring.inspection``): one
message per tier partition, and the compacted schedule topic (one record per schedule).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

from ...conf import get_settings
from ...delays.forwarder import group_id as delays_group
from ...delays.inspection import tier_states
from ...delays.tiers import label
from ...recurring.inspection import schedule_states
from ...recurring.loader import get_recurring
from ...recurring.scheduler import group_id as scheduler_group
from ...topics import existing_topics
from .base import BROKER_ERRORS, READ_TIMEOUT, render

if TYPE_CHECKING:
    from ..admin import DashboardAdmin


def _moment(ms: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms is not None else None


def scheduled(request: HttpRequest, model_admin: DashboardAdmin) -> HttpResponse:
    """The delay tiers: delayed jobs waiting in each, and when the oldest is released."""
    settings = get_settings()
    context: dict[str, object] = {"group": delays_group(settings)}
    try:
        tiers = tier_states(settings, timeout=READ_TIMEOUT)
    except BROKER_ERRORS as exc:
        context["error"] = str(exc)
    else:
        context["tiers"] = [
            {
                "state": tier,
                "label": label(tier.delay_ms) if tier.delay_ms else "?",
                "next_release": _moment(tier.next_release_ms),
            }
            for tier in tiers
        ]
        context["total"] = sum(tier.waiting for tier in tiers)
    context["now"] = dt.datetime.now(dt.UTC)
    return render(request, model_admin, "scheduled.html", "scheduled", "Scheduled jobs", **context)


def recurring(request: HttpRequest, model_admin: DashboardAdmin) -> HttpResponse:
    """The recurring schedules: what each enqueues, its next tick and its last fire."""
    settings = get_settings()
    context: dict[str, object] = {"group": scheduler_group(settings)}
    try:
        declared = get_recurring()
        if declared:
            existing_topics(settings, timeout=READ_TIMEOUT)  # a broker that is down is an error, not "never fired"
        context["schedules"] = schedule_states(settings, declared, timeout=READ_TIMEOUT)
    except BROKER_ERRORS as exc:
        context["error"] = str(exc)
    context["now"] = dt.datetime.now(dt.UTC)
    return render(request, model_admin, "recurring.html", "recurring", "Recurring jobs", **context)
