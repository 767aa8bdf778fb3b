"""``recurring_job(...)``: a job enqueued on a schedule, declared in the routes module.

Everything that can be checked without the job registry is checked when the declaration is made (a bad
cron expression fails at import of the routes module); the rest (the job class named by a string, the
queue's route, duplicate names) when the declarations are loaded: at worker start and in ``manage.py check``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from .timing import CronSchedule, IntervalSchedule, Schedule, time_zone

if TYPE_CHECKING:
    from ..job import Job

MISSED_POLICIES = ("latest", "skip")
# A tick at most this late still fires (a busy machine or a takeover is not downtime); later ones were missed.
DEFAULT_GRACE = dt.timedelta(seconds=60)
NAME_RE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
# Job ids of ticks are uuid5(TICK_NAMESPACE, "<schedule name>@<tick, ISO 8601 UTC>"): the same on every worker.
TICK_NAMESPACE = uuid.UUID("6f1c2b0e-5a8e-4a47-9d3e-2c8f0b7d4e61")


@dataclasses.dataclass(frozen=True)
class RecurringJob:
    """One schedule: which job, with which arguments, on which queue, when, and what to do about missed ticks."""

    name: str
    job: type[Job] | str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    queue: str | None = None
    missed: str = "latest"
    grace: dt.timedelta = DEFAULT_GRACE

    @property
    def job_name(self) -> str:
        """Return the registered name of the job (the class's ``job_name`` or the string given)."""
        return self.job if isinstance(self.job, str) else self.job.job_name

    def job_id(self, tick: dt.datetime) -> str:
        """Return the id of the job of ``tick``: deterministic, so a duplicate fire is recognisable."""
        return str(uuid.uuid5(TICK_NAMESPACE, f"{self.name}@{tick.astimezone(dt.UTC).isoformat()}"))


def recurring_job(
    name: str,
    job: type[Job] | str,
    *,
    cron: str | None = None,
    every: dt.timedelta | float | None = None,
    timezone: str = "UTC",
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    missed: str = "latest",
    grace: dt.timedelta | float = DEFAULT_GRACE,
) -> RecurringJob:
    """Declare a job enqueued on a schedule, in the routes module's ``recurring_jobs`` list.

    ``recurring_jobs = [recurring_job("nightly-report", ReportJob, cron="0 3 * * *", timezone="Europe/Berlin")]``

    Args:
        name: unique among the schedules; identifies its last fire across restarts (renaming starts afresh).
        job: the ``Job`` subclass, or its registered ``job_name``.
        cron: a cron expression (5 fields, or 6 with seconds first), evaluated in ``timezone``. Needs
            ``pip install 'kafka-jobs[cron]'``.
        every: a fixed interval instead of ``cron`` (a timedelta or seconds, at least 1 s), counted from the epoch.
        args, kwargs: the arguments of every tick's job (encoded like ``perform_later``'s).
        queue: the queue to enqueue to (default: the job's ``queue_as``).
        missed: ticks more than ``grace`` late were missed (no scheduler ran): ``"latest"`` runs the latest
            of them once; ``"skip"`` runs none of them.
        grace: how late a tick may be and still fire (default 60 s; a timedelta or seconds).
    """
    where = f"recurring_job({name!r})"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigurationError(f"{where}: the name must be 1-200 characters from [A-Za-z0-9._:-].")
    if (cron is None) == (every is None):
        raise ConfigurationError(f"{where}: pass exactly one of cron='...' or every=timedelta(...).")
    schedule: Schedule
    if cron is not None:
        schedule = CronSchedule.parse(cron, time_zone(timezone, where), where)
    else:
        if timezone != "UTC":
            raise ConfigurationError(f"{where}: timezone applies to cron= only; every= counts from the epoch.")
        schedule = IntervalSchedule.parse(every, where)
    if not _is_job(job):
        raise ConfigurationError(f"{where}: job must be a Job subclass or a registered job name, got {job!r}.")
    if not isinstance(args, list | tuple):
        raise ConfigurationError(f"{where}: args must be a list or tuple, got {args!r}.")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"{where}: kwargs must be a dict, got {kwargs!r}.")
    if queue is not None and not isinstance(queue, str):
        raise ConfigurationError(f"{where}: queue must be a queue name, got {queue!r}.")
    if missed not in MISSED_POLICIES:
        raise ConfigurationError(f"{where}: missed must be one of {MISSED_POLICIES}, got {missed!r}.")
    if isinstance(grace, int | float) and not isinstance(grace, bool):
        grace = dt.timedelta(seconds=grace)
    if not isinstance(grace, dt.timedelta) or grace < dt.timedelta(0):
        raise ConfigurationError(f"{where}: grace must be a timedelta (or seconds) >= 0, got {grace!r}.")
    return RecurringJob(name, job, schedule, tuple(args), dict(kwargs or {}), queue, missed, grace)


def _is_job(job: Any) -> bool:
    from ..job import Job

    if isinstance(job, str):
        return bool(job)
    return isinstance(job, type) and issubclass(job, Job) and not job.abstract
