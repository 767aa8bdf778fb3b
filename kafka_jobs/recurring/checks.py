"""System checks of the recurring schedules (``manage.py check``), with any ``JOB_BACKEND``."""

from __future__ import annotations

from typing import Any

from django.core import checks

from ..delays.tiers import TOPIC_INFIX
from ..exceptions import ConfigurationError
from ..internal_topics import SCHEDULE_TOPIC
from ..ops.topics import COMMANDS_TOPIC, REPORTS_TOPIC

RESERVED_QUEUES = (SCHEDULE_TOPIC, REPORTS_TOPIC, COMMANDS_TOPIC)


def check_recurring(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """kafka_jobs.E020: a recurring schedule is invalid; E021: a routed queue takes a name kafka_jobs uses."""
    from ..conf import get_settings
    from ..routing import get_routes
    from .loader import get_recurring

    try:
        settings = get_settings()
        routes = get_routes()
    except ConfigurationError:
        return []  # reported by kafka_jobs.E001 / E002
    problems: list[checks.CheckMessage] = [
        checks.Error(
            f"Queue {queue!r} is named like a topic kafka_jobs uses itself (delay tiers, schedules, worker reports, "
            "queue commands).",
            hint=f"Rename the queue: names starting with {TOPIC_INFIX!r} or equal to one of {RESERVED_QUEUES} are "
            "reserved.",
            id="kafka_jobs.E021",
        )
        for queue in routes.by_queue
        if queue.startswith(TOPIC_INFIX) or queue in RESERVED_QUEUES
    ]
    try:
        get_recurring()
    except ConfigurationError as exc:
        problems.append(checks.Error(str(exc), hint=f"Fix recurring_jobs in {settings.routes}.", id="kafka_jobs.E020"))
    return problems
