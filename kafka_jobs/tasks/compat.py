"""The one place that knows where Django's task framework lives: ``django.tasks`` (Django 6+) or the
``django_tasks`` backport (Django 5.2, ``pip install kafka-jobs[tasks]``).

Everything else in ``kafka_jobs.tasks`` imports these names from here, so there is one code path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import django

if TYPE_CHECKING or django.VERSION >= (6, 0):  # type checkers read django.tasks (django-stubs has it)
    from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import DEFAULT_TASK_PRIORITY, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    FRAMEWORK = "django.tasks"
else:  # pragma: no cover - exercised by the Python 3.11 / Django 5.2 test run
    try:
        import django_tasks  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"kafka_jobs.tasks needs django.tasks (Django 6.0+) or, on Django {django.get_version()}, the "
            "django-tasks backport: pip install 'kafka-jobs[tasks]' and add 'django_tasks' to INSTALLED_APPS."
        ) from exc
    from django_tasks import task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import DEFAULT_TASK_PRIORITY, Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

    FRAMEWORK = "django_tasks"

__all__ = [
    "DEFAULT_TASK_PRIORITY",
    "FRAMEWORK",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultMismatch",
    "TaskResultStatus",
    "normalize_json",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
