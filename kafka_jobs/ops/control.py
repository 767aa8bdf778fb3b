"""Pause and resume queues: commands on the commands topic, keyed by queue; the latest one wins.

Workers read the topic from its start with a group-less consumer (``kafka_jobs.ops.commands``), so a
worker started after a pause honours it too, and confirm what they applied in their reports.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable
from typing import Any, Self

from ..conf import KafkaJobsSettings, get_settings
from ..exceptions import ReportError, UnroutedQueue
from ..producer import OutgoingMessage, get_producer
from ..routing import get_routes
from .latest import read_latest
from .report import WorkerReport, WorkerState
from .topics import commands_topic

PAUSE = "pause"
RESUME = "resume"
ACTIONS = (PAUSE, RESUME)
COMMAND_VERSION = 1
MAX_BY = 200
COMMANDS_READ_LIMIT = 10_000


@dataclasses.dataclass(frozen=True)
class QueueCommand:
    """The latest pause or resume asked for a queue."""

    queue: str
    action: str  # "pause" | "resume"
    id: str
    at: dt.datetime
    by: str = ""

    @property
    def paused(self) -> bool:
        """True if the queue is to be paused."""
        return self.action == PAUSE

    def to_json(self) -> bytes:
        """Return the record value."""
        data = {"v": COMMAND_VERSION, "queue": self.queue, "action": self.action, "id": self.id}
        data.update({"at": self.at.isoformat(), "by": self.by})
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | None) -> Self:
        """Decode a record value; raise ``ReportError`` if it is not a command."""
        try:
            data: Any = json.loads(raw) if raw is not None else None
            if not isinstance(data, dict) or data.get("action") not in ACTIONS:
                raise ValueError(f"not a queue command: {data!r:.100}")
            at = dt.datetime.fromisoformat(str(data["at"]))
            return cls(str(data["queue"]), str(data["action"]), str(data["id"]), at, str(data.get("by", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"Malformed queue command: {exc}") from exc


def _send(queue: str, action: str, by: str, settings: KafkaJobsSettings | None) -> QueueCommand:
    settings = settings or get_settings()
    routes = get_routes()
    if queue not in routes.by_queue:
        known = ", ".join(sorted(routes.by_queue)) or "none"
        raise UnroutedQueue(f"Queue {queue!r} is not routed, so no worker consumes it (routed queues: {known}).")
    command = QueueCommand(queue, action, uuid.uuid4().hex, dt.datetime.now(dt.UTC), str(by)[:MAX_BY])
    message = OutgoingMessage(
        commands_topic(settings), command.to_json(), key=queue.encode(), description=f"{action} of queue {queue!r}"
    )
    get_producer().produce([message], sync=True)
    return command


def pause_queue(queue: str, *, by: str = "", settings: KafkaJobsSettings | None = None) -> QueueCommand:
    """Ask every worker to stop starting jobs of ``queue`` (running ones finish) until it is resumed.

    Raises:
        UnroutedQueue: ``queue`` is not routed.
        EnqueueError: the command could not be written (``BrokerUnavailable`` if the broker is away).
    """
    return _send(queue, PAUSE, by, settings)


def resume_queue(queue: str, *, by: str = "", settings: KafkaJobsSettings | None = None) -> QueueCommand:
    """Lift a pause of ``queue`` (see ``pause_queue``)."""
    return _send(queue, RESUME, by, settings)


def read_queue_commands(settings: KafkaJobsSettings | None = None, *, timeout: float = 5.0) -> dict[str, QueueCommand]:
    """Return the latest command of each queue that has one."""
    settings = settings or get_settings()
    latest = read_latest(settings, commands_topic(settings), limit=COMMANDS_READ_LIMIT, timeout=timeout)
    commands = {}
    for value in latest.values():
        try:
            command = QueueCommand.from_json(value)
        except ReportError:
            continue
        commands[command.queue] = command
    return commands


def confirmations(
    command: QueueCommand, reports: Iterable[WorkerReport], now: dt.datetime | None = None
) -> tuple[list[str], list[str]]:
    """Return (confirmed, pending) worker ids among the running workers that consume ``command.queue``."""
    confirmed: list[str] = []
    pending: list[str] = []
    for report in reports:
        if report.state(now) is not WorkerState.RUNNING or command.queue not in report.queues:
            continue
        (confirmed if report.commands.get(command.queue) == command.id else pending).append(report.worker_id)
    return confirmed, pending
