"""Django system checks for kafka_jobs (``manage.py check``): the settings, then the backend's own checks."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .exceptions import ConfigurationError


def check_settings(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """kafka_jobs.E001: ``JOB_BACKEND`` or ``KAFKA_JOBS`` is invalid."""
    from .conf import get_settings

    try:
        get_settings()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="kafka_jobs.E001")]
    return []


def check_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report the configured backend's ``check()`` (as Django checks each task backend); kafka: E002, W001."""
    from .backends import get_backend

    try:
        backend = get_backend()
    except ConfigurationError:  # reported by check_settings
        return []
    return list(backend.check(**kwargs))


def register() -> None:
    """Register the checks (called from AppConfig.ready)."""
    from .recurring.checks import check_recurring

    checks.register(check_settings, "kafka_jobs")
    checks.register(check_backend, "kafka_jobs")
    checks.register(check_recurring, "kafka_jobs")
