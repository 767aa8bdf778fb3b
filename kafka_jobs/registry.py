"""Job name -> Job class: the only way a message can name code to run.

Names are registered when a ``Job`` subclass is defined; a message naming anything else is refused and
nothing is ever imported on its behalf.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TYPE_CHECKING

from django.apps import apps

from .exceptions import InvalidJob, JobNotRegistered

if TYPE_CHECKING:
    from .job import Job

_lock = threading.Lock()
_jobs: dict[str, type[Job]] = {}


def register(job_class: type[Job]) -> None:
    """Register ``job_class`` under its ``job_name``; two different classes may not share a name."""
    name = job_class.job_name
    with _lock:
        existing = _jobs.get(name)
        if existing is not None and existing is not job_class and _identity(existing) != _identity(job_class):
            raise InvalidJob(
                f"Job name {name!r} is already used by {_identity(existing)}; set a distinct job_name on "
                f"{_identity(job_class)}."
            )
        _jobs[name] = job_class


def _identity(job_class: type) -> str:
    return f"{job_class.__module__}.{job_class.__qualname__}"


def get(name: str) -> type[Job]:
    """Return the job class registered as ``name`` or raise ``JobNotRegistered``."""
    try:
        return _jobs[name]
    except (KeyError, TypeError):
        raise JobNotRegistered(str(name)) from None


def all_jobs() -> dict[str, type[Job]]:
    """Return a snapshot of the registry."""
    with _lock:
        return dict(_jobs)


def autodiscover() -> None:
    """Import every installed app's ``jobs`` module, and each submodule if ``jobs`` is a package."""
    for app_config in apps.get_app_configs():
        module_name = f"{app_config.name}.jobs"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{module_name}."):
            importlib.import_module(info.name)
