"""kafka_jobs.E041: a ``TASKS`` entry uses ``KafkaTaskBackend`` but the task framework is not set up.

On Django 6 the framework is built in, but its check that runs each backend's ``check()`` is registered
only once ``django.tasks`` is imported, which nothing in Django does at start-up: ``register`` imports it
when ``TASKS`` uses this backend. On Django 5.2 it is the django-tasks backport, which must be installed
and in ``INSTALLED_APPS`` (its app registers that check); without it this module is the only one to say so.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core import checks

BACKEND_PREFIX = "kafka_jobs.tasks."


def kafka_aliases() -> list[str]:
    """Return the ``TASKS`` aliases whose backend is one of kafka_jobs'."""
    tasks = getattr(settings, "TASKS", None)
    if not isinstance(tasks, dict):
        return []
    return sorted(
        alias
        for alias, params in tasks.items()
        if isinstance(params, dict) and str(params.get("BACKEND", "")).startswith(BACKEND_PREFIX)
    )


def register() -> None:
    """Make ``manage.py check`` run the task backends' ``check()`` on Django 6 (see the module docstring)."""
    if django.VERSION >= (6, 0) and kafka_aliases():
        importlib.import_module("django.tasks")


def check_task_framework(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """kafka_jobs.E041: the backport is missing or not in ``INSTALLED_APPS`` (Django < 6 only)."""
    if django.VERSION >= (6, 0):
        return []
    ours = kafka_aliases()
    if not ours:
        return []
    if importlib.util.find_spec("django_tasks") is None:
        return [
            checks.Error(
                f"TASKS {ours} use KafkaTaskBackend, but Django {django.get_version()} has no django.tasks and the "
                "django-tasks backport is not installed.",
                hint="pip install 'kafka-jobs[tasks]' and add 'django_tasks' to INSTALLED_APPS (or use Django 6).",
                id="kafka_jobs.E041",
            )
        ]
    if not apps.is_installed("django_tasks"):
        return [
            checks.Error(
                f"TASKS {ours} use KafkaTaskBackend with the django-tasks backport, but 'django_tasks' is not in "
                "INSTALLED_APPS, so Django never runs the task backends' system checks.",
                hint="Add 'django_tasks' to INSTALLED_APPS.",
                id="kafka_jobs.E041",
            )
        ]
    return []
