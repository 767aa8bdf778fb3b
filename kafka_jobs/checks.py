"""Django system checks for kafka_jobs (``manage.py check``): the settings, then the backend's own checks."""

from __future__ import annotations

import importlib.util
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


def check_routes(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """kafka_jobs.E002: the routes module does not load or is invalid.

    With any ``JOB_BACKEND``: a project developed on the ``async`` backend must hear about a broken routes module
    before it deploys with ``kafka`` (the worker reads the routes whatever the backend). Only the ``kafka``
    backend needs the module to exist.
    """
    from .conf import get_settings
    from .routing import get_routes

    try:
        settings = get_settings()
    except ConfigurationError:  # reported by check_settings
        return []
    if settings.backend != "kafka" and not _module_exists(settings.routes):
        return []
    try:
        get_routes()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), hint="Fix KAFKA_JOBS['ROUTES'] or the routes module.", id="kafka_jobs.E002")]
    return []


def _module_exists(path: str) -> bool:
    try:
        return importlib.util.find_spec(path) is not None
    except ImportError:  # a parent package is missing
        return False


def check_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report the configured backend's ``check()`` (as Django checks each task backend); kafka: W001."""
    from .backends import get_backend

    try:
        backend = get_backend()
    except ConfigurationError:  # reported by check_settings
        return []
    return list(backend.check(**kwargs))


def check_context(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """kafka_jobs.E030: a ``KAFKA_JOBS['CONTEXT']`` entry cannot be loaded (every job would fail in the worker)."""
    from .conf import get_settings
    from .ops.context import contexts

    try:
        get_settings()
    except ConfigurationError:  # reported by check_settings (E001), not as a CONTEXT error
        return []
    try:
        contexts()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), hint="Fix KAFKA_JOBS['CONTEXT'].", id="kafka_jobs.E030")]
    return []


def register() -> None:
    """Register the checks (called from AppConfig.ready)."""
    from .recurring.checks import check_recurring
    from .tasks.checks import check_task_framework
    from .tasks.checks import register as register_task_checks

    checks.register(check_settings, "kafka_jobs")
    checks.register(check_routes, "kafka_jobs")
    checks.register(check_backend, "kafka_jobs")
    checks.register(check_recurring, "kafka_jobs")
    checks.register(check_context, "kafka_jobs")
    checks.register(check_task_framework, "kafka_jobs")
    register_task_checks()
