"""``KafkaTaskBackend``: Django's task backend contract (``BaseTaskBackend``) on kafka_jobs.

``TASKS = {"default": {"BACKEND": "kafka_jobs.tasks.KafkaTaskBackend", "QUEUES": [...], "OPTIONS": {...}}}``.
A task is enqueued as a ``TaskJob`` through the configured ``JOB_BACKEND`` (``"kafka"`` in production),
so it follows the jobs' rules; ``runkafkaworker`` runs it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core import checks
from django.utils import timezone

from ..conf import get_settings
from ..exceptions import ConfigurationError
from ..routing import get_routes
from ..validators import QUEUE_NAME_RULE, is_queue_name
from . import runner  # noqa: F401 - connects the receivers that keep results and send Django's signals
from .compat import BaseTaskBackend, InvalidTask, Task, TaskResult, TaskResultStatus
from .job import TaskJob
from .resolver import installed_app_of
from .results import NoResults, results_from_options


class KafkaTaskBackend(BaseTaskBackend):
    """Enqueue django.tasks tasks as kafka_jobs messages; keep their results if ``OPTIONS['RESULTS']`` says so.

    Flags: ``supports_defer`` (``run_after`` waits in the delay tiers), ``supports_async_task`` (run to
    completion in a worker's job thread), ``supports_get_result`` only with results kept,
    ``supports_priority`` never (Kafka has no per-message priority: use queues).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = False  # True on an instance that keeps results
    supports_priority = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.options_error: ConfigurationError | None = None
        try:
            self.results = results_from_options(alias, self.options)
        except ConfigurationError as exc:  # reported by check() (kafka_jobs.E040), raised by enqueue()
            self.options_error, self.results = exc, NoResults()
        self.supports_get_result = self.results.enabled

    def validate_task(self, task: Task) -> None:
        """Django's rules, and a function the worker can find again by its module path."""
        super().validate_task(task)
        if "." in task.func.__qualname__:
            raise InvalidTask(
                f"Task {task.module_path} is defined in a class; a KafkaTaskBackend task must be a module-level "
                "function, so the worker can find it by its module path."
            )

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Send ``task`` with ``args``/``kwargs`` (JSON values) to its queue; return the READY result.

        Inside a transaction the message waits for the commit (``ENQUEUE_AFTER_COMMIT``); ``task_enqueued``
        is sent when it is dispatched. With results kept, the READY row is written first, in the caller's
        transaction.
        """
        if self.options_error is not None:
            raise self.options_error
        self.validate_task(task)
        if installed_app_of(task.func.__module__) is None:
            raise InvalidTask(
                f"Task {task.module_path} is not in an installed app's package; the worker runs only tasks of "
                "installed apps. Move it into one, or add its app to INSTALLED_APPS."
            )
        result: TaskResult = TaskResult(
            task=task,
            id=str(uuid.uuid4()),
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        job = TaskJob.for_result(result, self)
        self.results.enqueued(result)
        try:
            job.enqueue()
        except BaseException:
            self.results.forget(result.id)
            raise
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """Return the stored result (``TaskResultDoesNotExist`` if none); ``NotImplementedError`` without results."""
        if self.options_error is not None:
            raise self.options_error
        return self.results.get(result_id)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """kafka_jobs.E040: bad OPTIONS or queue names; W040: a queue in QUEUES is not routed."""
        where = f"TASKS[{self.alias!r}]"
        messages: list[checks.CheckMessage] = []
        if self.options_error is not None:
            messages.append(checks.Error(str(self.options_error), id="kafka_jobs.E040"))
        bad = sorted(str(queue) for queue in self.queues if not is_queue_name(queue))
        if bad:
            messages.append(
                checks.Error(
                    f"{where}['QUEUES'] has invalid queue names {bad}: use {QUEUE_NAME_RULE}.", id="kafka_jobs.E040"
                )
            )
        try:
            settings = get_settings()
            routes = get_routes()
        except ConfigurationError:  # reported by kafka_jobs.E001 / E002
            return messages
        if settings.require_route:
            messages += [
                checks.Warning(
                    f"{where}['QUEUES'] lists {queue!r}, which is not routed: enqueueing a task on it fails.",
                    hint=f"Add active_job_topic({queue!r}) to routes in {settings.routes}, or remove it from QUEUES.",
                    id="kafka_jobs.W040",
                )
                for queue in sorted(self.queues - set(bad))
                if queue not in routes.by_queue
            ]
        return messages
