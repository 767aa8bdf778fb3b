"""Load the ``recurring_jobs`` list of the routes module and check it against the registry and routes.

Cached for the current settings object (rebuilt, with the routes, when the settings change).
"""

from __future__ import annotations

import importlib
import threading

from .. import arguments, registry
from ..conf import KafkaJobsSettings, get_settings
from ..exceptions import ConfigurationError, EncodeError, JobNotRegistered
from ..job import Job
from ..routing import get_routes
from .declaration import RecurringJob

_lock = threading.Lock()
_cache: tuple[KafkaJobsSettings, tuple[RecurringJob, ...]] | None = None


def load_recurring(module_path: str) -> tuple[RecurringJob, ...]:
    """Return the validated ``recurring_jobs`` of ``module_path`` (none if it declares none)."""
    module = importlib.import_module(module_path)
    declared = getattr(module, "recurring_jobs", ())
    if not isinstance(declared, list | tuple):
        raise ConfigurationError(
            f"{module_path}.recurring_jobs must be a list of recurring_job(...) declarations, got {declared!r}."
        )
    seen: set[str] = set()
    for item in declared:
        if not isinstance(item, RecurringJob):
            raise ConfigurationError(
                f"{module_path}.recurring_jobs must contain recurring_job(...) declarations, got {item!r}."
            )
        if item.name in seen:
            raise ConfigurationError(
                f"{module_path}.recurring_jobs declares the schedule name {item.name!r} twice; names identify "
                "a schedule's last fire, so each must be unique."
            )
        seen.add(item.name)
        job_class(item)
        _check_arguments(item)
    return tuple(declared)


def job_class(recurring: RecurringJob) -> type[Job]:
    """Return the job class of a schedule; raise ``ConfigurationError`` if the name is not registered."""
    if not isinstance(recurring.job, str):
        return recurring.job
    try:
        return registry.get(recurring.job)
    except JobNotRegistered:
        raise ConfigurationError(
            f"recurring_job({recurring.name!r}) names the job {recurring.job!r}, which is not registered. Use the "
            "job class itself, or the job_name of a Job subclass in an installed app's jobs module."
        ) from None


def queue_of(recurring: RecurringJob) -> str:
    """Return the queue a schedule's jobs go to."""
    return recurring.queue or job_class(recurring).queue_as


def _check_arguments(recurring: RecurringJob) -> None:
    try:
        arguments.encode(list(recurring.args))
        arguments.encode(dict(recurring.kwargs))
    except (EncodeError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"recurring_job({recurring.name!r}): its arguments cannot be encoded ({exc})."
        ) from None


def check_routes(recurring: tuple[RecurringJob, ...], settings: KafkaJobsSettings) -> None:
    """Raise ``ConfigurationError`` if a schedule's queue is not routed (and routes are required)."""
    if not settings.require_route:
        return
    routed = get_routes().by_queue
    for item in recurring:
        queue = queue_of(item)
        if queue not in routed:
            raise ConfigurationError(
                f"recurring_job({item.name!r}) enqueues to queue {queue!r}, which is not routed. Add "
                f"active_job_topic({queue!r}) to routes in {settings.routes}, or pass queue=... ."
            )


def get_recurring() -> tuple[RecurringJob, ...]:
    """Return the recurring jobs of ``KAFKA_JOBS['ROUTES']``, validated (cached until settings change)."""
    global _cache
    settings = get_settings()
    with _lock:
        if _cache is not None and _cache[0] is settings:
            return _cache[1]
    get_routes()  # a routes module that does not load is reported as such first
    recurring = load_recurring(settings.routes)
    check_routes(recurring, settings)
    with _lock:
        _cache = (settings, recurring)
    return recurring
