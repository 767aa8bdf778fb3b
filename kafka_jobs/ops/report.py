"""A worker's status report: what it owns, runs, waits on and has counted, as JSON on the reports topic.

Frozen dataclasses, built by the worker's reporter and read back by ``kafka_jobs.ops.reader`` (the
dashboard's source). Times are aware UTC datetimes, written as ISO strings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any, Self

from ..exceptions import ReportError

REPORT_VERSION = 1
# A worker whose latest report is older than this many of its own intervals is shown as gone.
GONE_AFTER_INTERVALS = 3
MAX_RECENT_ERRORS = 20
MAX_ERROR_TEXT = 500


class WorkerState(enum.StrEnum):
    """What a reader concludes about a worker from its latest report."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    GONE = "gone"


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise ReportError(f"expected an ISO datetime string, got {type(value).__name__} {value!r:.80}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ReportError(f"not an ISO datetime: {value!r:.80}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _opt_time(value: Any) -> dt.datetime | None:
    return None if value is None else _time(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def error_text(exc: BaseException | None) -> str:
    """Return ``"Class: message"`` for ``exc``, at most ``MAX_ERROR_TEXT`` characters ("" for None)."""
    if exc is None:
        return ""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not break the report
        message = "<unprintable>"
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


@dataclasses.dataclass(frozen=True)
class Counters:
    """Job outcomes counted since the worker started."""

    succeeded: int = 0  # jobs that returned
    failed: int = 0  # failed runs, whatever followed
    retried: int = 0  # failed runs that will be retried
    discarded: int = 0  # discard_on matches and skipped poison messages
    dead_lettered: int = 0  # written to a dead letter queue

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read counters; unknown keys (from a newer worker) are ignored."""
        return cls(**{f.name: int(data.get(f.name, 0)) for f in dataclasses.fields(cls)})

    def __add__(self, other: Counters) -> Counters:
        """Return the two counters added up, field by field."""
        return Counters(*(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(Counters)))


@dataclasses.dataclass(frozen=True)
class Retrying:
    """The job a lane of a partition waits on before running it again."""

    offset: int
    job: str
    job_id: str
    failures: int
    error: str
    retry_at: dt.datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read one retrying job."""
        return cls(
            int(data["offset"]),
            str(data["job"]),
            str(data["job_id"]),
            int(data["failures"]),
            str(data["error"]),
            _opt_time(data.get("retry_at")),
        )


@dataclasses.dataclass(frozen=True)
class PartitionReport:
    """One assigned partition: offsets, lag, buffer, and why it is paused."""

    topic: str
    queue: str
    partition: int
    committed: int | None
    position: int | None
    end: int | None
    lag: int | None
    buffered: int
    running: int
    paused: bool
    held: bool
    retrying: list[Retrying] = dataclasses.field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read one partition."""
        return cls(
            topic=str(data["topic"]),
            queue=str(data["queue"]),
            partition=int(data["partition"]),
            committed=data.get("committed"),
            position=data.get("position"),
            end=data.get("end"),
            lag=data.get("lag"),
            buffered=int(data.get("buffered", 0)),
            running=int(data.get("running", 0)),
            paused=bool(data.get("paused", False)),
            held=bool(data.get("held", False)),
            retrying=[Retrying.from_dict(r) for r in data.get("retrying", [])],
        )


@dataclasses.dataclass(frozen=True)
class RunningJob:
    """A job running now."""

    job: str
    job_id: str
    topic: str
    partition: int
    offset: int
    since: dt.datetime

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read one running job."""
        return cls(
            str(data["job"]),
            str(data["job_id"]),
            str(data["topic"]),
            int(data["partition"]),
            int(data["offset"]),
            _time(data["since"]),
        )


@dataclasses.dataclass(frozen=True)
class RecentError:
    """A failed run, kept in a bounded list of the latest ones."""

    at: dt.datetime
    job: str
    job_id: str
    topic: str
    partition: int
    offset: int
    error: str
    outcome: str  # "retry" | "discarded" | "dead-lettered" | "failed"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read one error."""
        return cls(
            _time(data["at"]),
            str(data["job"]),
            str(data["job_id"]),
            str(data["topic"]),
            int(data["partition"]),
            int(data["offset"]),
            str(data["error"]),
            str(data["outcome"]),
        )


@dataclasses.dataclass(frozen=True)
class WorkerReport:
    """One worker's status at ``reported_at``."""

    worker_id: str
    status: str  # "running" | "stopping" | "stopped", as the worker said
    host: str
    pid: int
    started_at: dt.datetime
    reported_at: dt.datetime
    interval: float
    group_id: str
    queues: list[str]
    concurrency: int
    partitions: list[PartitionReport] = dataclasses.field(default_factory=list)
    running: list[RunningJob] = dataclasses.field(default_factory=list)
    counters: Counters = Counters()
    queue_counters: dict[str, Counters] = dataclasses.field(default_factory=dict)
    recent_errors: list[RecentError] = dataclasses.field(default_factory=list)
    rss_bytes: int | None = None
    paused_queues: list[str] = dataclasses.field(default_factory=list)
    commands: dict[str, str] = dataclasses.field(default_factory=dict)
    jobs_per_second: float = 0.0  # runs (succeeded and failed) per second since the previous report
    version: int = REPORT_VERSION

    def state(self, now: dt.datetime | None = None) -> WorkerState:
        """Return the worker's state: as it said, or GONE once it missed ``GONE_AFTER_INTERVALS`` reports."""
        if self.status == WorkerState.STOPPED.value:
            return WorkerState.STOPPED
        now = now or dt.datetime.now(dt.UTC)
        if (now - self.reported_at).total_seconds() > GONE_AFTER_INTERVALS * self.interval:
            return WorkerState.GONE
        return WorkerState.STOPPING if self.status == WorkerState.STOPPING.value else WorkerState.RUNNING

    @property
    def total_lag(self) -> int:
        """The sum of the known lags of its partitions."""
        return sum(p.lag for p in self.partitions if p.lag is not None)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        data: dict[str, Any] = _json_value(self)
        return data

    def to_json(self) -> bytes:
        """Return the report as compact UTF-8 JSON (the reports topic's record value)."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Read a report; raise ``ReportError`` if it is not one (unknown keys from newer workers are ignored)."""
        if not isinstance(data, Mapping):
            raise ReportError(f"A worker report is a JSON object, got {type(data).__name__}.")
        try:
            return cls(
                worker_id=str(data["worker_id"]),
                status=str(data["status"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                started_at=_time(data["started_at"]),
                reported_at=_time(data["reported_at"]),
                interval=float(data["interval"]),
                group_id=str(data["group_id"]),
                queues=[str(q) for q in data.get("queues", [])],
                concurrency=int(data.get("concurrency", 0)),
                partitions=[PartitionReport.from_dict(p) for p in data.get("partitions", [])],
                running=[RunningJob.from_dict(r) for r in data.get("running", [])],
                counters=Counters.from_dict(data.get("counters", {})),
                queue_counters={str(q): Counters.from_dict(c) for q, c in data.get("queue_counters", {}).items()},
                recent_errors=[RecentError.from_dict(e) for e in data.get("recent_errors", [])],
                rss_bytes=data.get("rss_bytes"),
                paused_queues=[str(q) for q in data.get("paused_queues", [])],
                commands={str(q): str(c) for q, c in data.get("commands", {}).items()},
                jobs_per_second=float(data.get("jobs_per_second", 0.0)),
                version=int(data.get("version", REPORT_VERSION)),
            )
        except ReportError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReportError(f"Malformed worker report: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, raw: bytes | None) -> Self:
        """Decode a record value of the reports topic."""
        if raw is None:
            raise ReportError("A tombstone is not a worker report.")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ReportError(f"A worker report is not UTF-8 JSON: {exc}") from exc
        return cls.from_dict(data)
