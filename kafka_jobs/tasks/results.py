"""Where task results are kept: nowhere (the default) or in the database (``OPTIONS={"RESULTS": "database"}``).

The enqueuer writes the READY result before the message can reach a worker; the worker writes each status
after that (``runner``). Writes are upserts by result id, so a worker never depends on the enqueuer's
row being there first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from ..exceptions import ConfigurationError, UnknownTask
from .compat import TaskError, TaskResult, TaskResultDoesNotExist, TaskResultStatus
from .resolver import resolve_task

RESULT_STORES = ("database",)
# The fields a stored row and a TaskResult hold alike; the others are converted by to_result() and _record().
SAME_FIELDS = ("id", "backend", "enqueued_at", "started_at", "finished_at", "last_attempted_at", "args", "kwargs")


@dataclasses.dataclass(frozen=True)
class Stored:
    """What a run takes over from the stored result: first start, enqueue time, earlier errors and workers."""

    enqueued_at: dt.datetime | None
    started_at: dt.datetime | None
    errors: list[TaskError]
    worker_ids: list[str]


def local_time(moment: dt.datetime | None) -> dt.datetime | None:
    """Return ``moment`` as the project stores times: aware with ``USE_TZ``, else naive local time."""
    if moment is None or settings.USE_TZ or timezone.is_naive(moment):
        return moment
    return timezone.make_naive(moment)


class NoResults:
    """Results are not kept: ``get_result`` is not supported (Django's ``NotImplementedError``)."""

    enabled = False

    def enqueued(self, result: TaskResult) -> None:
        """Record a READY result (nothing to do)."""

    def forget(self, result_id: str) -> None:
        """Drop a result whose task could not be enqueued (nothing to do)."""

    def load(self, result_id: str) -> Stored | None:
        """Return what is stored of a result: nothing."""
        return None

    def save(self, result: TaskResult) -> None:
        """Record a result's new status (nothing to do)."""

    def get(self, result_id: str) -> TaskResult:
        """Refuse: this backend keeps no results."""
        raise NotImplementedError(
            "This KafkaTaskBackend keeps no results: set OPTIONS={'RESULTS': 'database'} in its TASKS entry to "
            "use get_result() and TaskResult.refresh()."
        )


class DatabaseResults(NoResults):
    """Results in the ``kafka_jobs_taskresult`` table (``kafka_jobs.models.TaskResultRecord``)."""

    enabled = True

    def enqueued(self, result: TaskResult) -> None:
        """Insert the READY result (inside the caller's transaction, like the enqueue itself)."""
        _record(result).save(force_insert=True)

    def forget(self, result_id: str) -> None:
        """Delete a result whose task could not be enqueued."""
        from .models import TaskResultRecord

        TaskResultRecord.objects.filter(pk=result_id).delete()

    def load(self, result_id: str) -> Stored | None:
        """Return what a new run takes over from the stored result, if there is one."""
        from .models import TaskResultRecord

        row = TaskResultRecord.objects.filter(pk=result_id).first()
        if row is None:
            return None
        return Stored(row.enqueued_at, row.started_at, _errors(row.errors), list(row.worker_ids))

    def save(self, result: TaskResult) -> None:
        """Write the whole result (an update, or an insert if the enqueuer's row is missing)."""
        _record(result).save()

    def get(self, result_id: str) -> TaskResult:
        """Return the stored result; raise ``TaskResultDoesNotExist`` if there is none (or its task is gone)."""
        from .models import TaskResultRecord

        try:
            row = TaskResultRecord.objects.get(pk=result_id)
        except (TaskResultRecord.DoesNotExist, ValueError, TypeError):
            raise TaskResultDoesNotExist(result_id) from None
        return to_result(row)


def to_result(row: Any) -> TaskResult:
    """Return the ``TaskResult`` of a stored row; ``TaskResultDoesNotExist`` if its task no longer resolves."""
    try:
        task = resolve_task(row.task_path)
    except UnknownTask as exc:
        raise TaskResultDoesNotExist(f"{row.id}: {exc}") from exc
    task = task.using(backend=row.backend, queue_name=row.queue_name, run_after=row.run_after)
    result: TaskResult = TaskResult(
        task=task,
        status=TaskResultStatus(row.status),
        errors=_errors(row.errors),
        worker_ids=list(row.worker_ids),
        **{name: getattr(row, name) for name in SAME_FIELDS},
    )
    if result.status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", row.return_value)
    return result


def _errors(raw: Any) -> list[TaskError]:
    return [TaskError(exception_class_path=e["exception_class_path"], traceback=e["traceback"]) for e in raw or []]


def _record(result: TaskResult) -> Any:
    from .models import TaskResultRecord

    task = result.task
    return TaskResultRecord(
        task_path=task.module_path,
        queue_name=task.queue_name,
        priority=task.priority,
        run_after=local_time(task.run_after),  # aware when it came through a message
        status=str(result.status),
        return_value=result.return_value if result.status == TaskResultStatus.SUCCESSFUL else None,
        errors=[{"exception_class_path": e.exception_class_path, "traceback": e.traceback} for e in result.errors],
        worker_ids=list(result.worker_ids),
        **{name: getattr(result, name) for name in SAME_FIELDS},
    )


def results_from_options(alias: str, options: Any) -> NoResults:
    """Return the result store ``OPTIONS`` asks for; raise ``ConfigurationError`` naming the bad key."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    if not isinstance(options, dict):
        raise ConfigurationError(f"{where} must be a dict, got {type(options).__name__}.")
    unknown = set(options) - {"RESULTS"}
    if unknown:
        raise ConfigurationError(f"{where} has unknown keys {sorted(unknown)}; the only key is 'RESULTS'.")
    store = options.get("RESULTS")
    if store is None:
        return NoResults()
    if store not in RESULT_STORES:
        raise ConfigurationError(
            f"{where}['RESULTS'] must be one of {', '.join(map(repr, RESULT_STORES))} or None (no results), "
            f"got {store!r}."
        )
    return DatabaseResults()


def missing_results_table() -> str | None:
    """Return the database alias that lacks the results table some ``TASKS`` backend keeps results in, or None.

    A worker started without it would run tasks and then fail to record them (dead-lettering each after its
    retries), so ``runkafkaworker`` refuses to start instead.
    """
    from .checks import kafka_aliases
    from .models import unmigrated_results_database

    tasks = getattr(settings, "TASKS", {})
    options = [tasks[alias].get("OPTIONS") for alias in kafka_aliases()]
    if not any(isinstance(option, dict) and option.get("RESULTS") is not None for option in options):
        return None
    return unmigrated_results_database()
