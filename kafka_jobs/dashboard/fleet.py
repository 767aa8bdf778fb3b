"""The workers' latest reports joined into what the overview, queues and workers pages show.

Pure: built from ``WorkerReport``s (``kafka_jobs.ops``), the latest pause/resume command per queue and the
routes, so it is tested with made-up reports. A partition is described by the live worker that reported it
last; a routed partition no live worker reports is shown as unassigned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from ..ops import Counters, PartitionReport, QueueCommand, RecentError, WorkerReport, WorkerState, confirmations
from ..routing import Route

LIVE = (WorkerState.RUNNING, WorkerState.STOPPING)
RECENT_ERRORS = 20


@dataclasses.dataclass(frozen=True)
class WorkerRow:
    """One worker: its latest report and the state the reader gives it now."""

    report: WorkerReport
    state: WorkerState
    rate: float  # jobs finished per second since its previous report (it measures and reports it)
    age: float  # seconds since its latest report

    @property
    def live(self) -> bool:
        """Running or stopping (not stopped, not gone)."""
        return self.state in LIVE

    @property
    def errors(self) -> list[tuple[str, RecentError]]:
        """Its recent errors, newest first, as (worker id, error) like ``Fleet.recent_errors``."""
        return [(self.report.worker_id, e) for e in reversed(self.report.recent_errors)]

    @property
    def finished(self) -> int:
        """Jobs that ended since it started, whatever the outcome."""
        counters = self.report.counters
        return counters.succeeded + counters.failed


@dataclasses.dataclass(frozen=True)
class PartitionRow:
    """One routed partition as its owner reports it (``report`` None: no live worker has it)."""

    topic: str
    queue: str
    partition: int
    report: PartitionReport | None
    worker_id: str | None
    last_error: RecentError | None

    @property
    def state(self) -> str:
        """``unassigned``, ``held`` (operator pause), ``retrying``, ``paused`` (flow control) or ``running``."""
        if self.report is None:
            return "unassigned"
        if self.report.held:
            return "held"
        if self.report.retrying:
            return "retrying"
        return "paused" if self.report.paused else "running"


@dataclasses.dataclass(frozen=True)
class QueueRow:
    """One routed queue: its partitions, its lag, and whether an operator paused it (and who confirmed)."""

    queue: str
    topic: str
    partitions: list[PartitionRow]
    command: QueueCommand | None
    confirmed: list[str]
    pending: list[str]

    @property
    def consumers(self) -> int:
        """Running workers that consume it (each confirms the latest command or has yet to)."""
        return len(self.confirmed) + len(self.pending)

    @property
    def paused(self) -> bool:
        """The latest command pauses it."""
        return self.command is not None and self.command.paused

    @property
    def lag(self) -> int:
        """The sum of the known lags of its partitions."""
        return sum(p.report.lag for p in self.partitions if p.report is not None and p.report.lag is not None)

    @property
    def retrying(self) -> int:
        """How many of its partitions wait to retry a failed job."""
        return sum(1 for p in self.partitions if p.report is not None and p.report.retrying)


@dataclasses.dataclass(frozen=True)
class Fleet:
    """Everything the overview, queues and workers pages show."""

    workers: list[WorkerRow]
    queues: list[QueueRow]
    recent_errors: list[tuple[str, RecentError]]  # (worker id, error), newest first
    now: dt.datetime

    @property
    def live(self) -> list[WorkerRow]:
        """The workers running or stopping."""
        return [w for w in self.workers if w.live]

    @property
    def lag(self) -> int:
        """The total lag of every routed queue."""
        return sum(q.lag for q in self.queues)

    @property
    def running_jobs(self) -> int:
        """Jobs running now on live workers."""
        return sum(len(w.report.running) for w in self.live)

    @property
    def rate(self) -> float:
        """Jobs finished per second by the live workers, as of their latest reports."""
        return sum(w.rate for w in self.live)

    @property
    def counters(self) -> Counters:
        """The live workers' counters added up (since each started)."""
        return sum((w.report.counters for w in self.live), Counters())

    @property
    def paused_queues(self) -> list[QueueRow]:
        """Queues an operator paused."""
        return [q for q in self.queues if q.paused]


def build_fleet(
    reports: Iterable[WorkerReport],
    routes: Iterable[Route],
    commands: Mapping[str, QueueCommand],
    *,
    now: dt.datetime | None = None,
) -> Fleet:
    """Join the reports, routes and commands into the pages' rows."""
    now = now or dt.datetime.now(dt.UTC)
    reports = list(reports)
    workers = [WorkerRow(r, r.state(now), r.jobs_per_second, (now - r.reported_at).total_seconds()) for r in reports]
    live = [w.report for w in workers if w.live]
    owners: dict[tuple[str, int], tuple[WorkerReport, PartitionReport]] = {}
    for report in sorted(live, key=lambda r: r.reported_at):  # the latest report of a partition wins
        for part in report.partitions:
            owners[(part.topic, part.partition)] = (report, part)
    errors = sorted(
        ((r.worker_id, e) for r in reports for e in r.recent_errors), key=lambda pair: pair[1].at, reverse=True
    )
    last_error: dict[tuple[str, int], RecentError] = {}
    for _worker, error in reversed(errors):  # oldest first, so the newest stays
        last_error[(error.topic, error.partition)] = error
    queues = []
    for route in routes:
        partitions = []
        reported = [number for topic, number in owners if topic == route.topic]
        for number in range(max(route.partitions, *(n + 1 for n in reported), 0)):
            owner = owners.get((route.topic, number))
            partitions.append(
                PartitionRow(
                    route.topic,
                    route.queue,
                    number,
                    owner[1] if owner else None,
                    owner[0].worker_id if owner else None,
                    last_error.get((route.topic, number)),
                )
            )
        command = commands.get(route.queue)
        confirmed, pending = confirmations(command, live, now) if command else ([], [])
        queues.append(QueueRow(route.queue, route.topic, partitions, command, confirmed, pending))
    order = {WorkerState.RUNNING: 0, WorkerState.STOPPING: 1, WorkerState.GONE: 2, WorkerState.STOPPED: 3}
    workers.sort(key=lambda w: (order[w.state], w.report.worker_id))
    return Fleet(workers, queues, errors[:RECENT_ERRORS], now)
