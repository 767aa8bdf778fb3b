"""Django system checks for kafka_jobs (``manage.py check``): settings, routes and job queues."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .exceptions import ConfigurationError


def check_settings(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """kafka_jobs.E001: settings invalid; E002: routes invalid; W001: a job's queue is not routed."""
    from . import registry
    from .conf import get_settings
    from .routing import get_routes

    try:
        settings = get_settings()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="kafka_jobs.E001")]
    if settings.backend != "kafka":
        return []
    try:
        routes = get_routes()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), hint="Fix KAFKA_JOBS['ROUTES'] or the routes module.", id="kafka_jobs.E002")]
    problems: list[checks.CheckMessage] = []
    if settings.require_route:
        for name, job_class in sorted(registry.all_jobs().items()):
            if job_class.queue_as not in routes.by_queue:
                problems.append(
                    checks.Warning(
                        f"Job {name} uses queue {job_class.queue_as!r}, which is not routed: enqueueing it fails.",
                        hint=f"Add active_job_topic({job_class.queue_as!r}) to routes in {settings.routes}.",
                        obj=job_class,
                        id="kafka_jobs.W001",
                    )
                )
    return problems


def register() -> None:
    """Register the checks (called from AppConfig.ready)."""
    checks.register(check_settings, "kafka_jobs")
