"""Operations: worker reports, queue pause/resume, metrics, health checks and trace propagation.

The dashboard and operators' tools use the names exported here; the worker uses the submodules.
"""

from .control import QueueCommand, confirmations, pause_queue, read_queue_commands, resume_queue
from .reader import DEFAULT_READ_LIMIT, ReportReader, read_reports
from .report import (
    GONE_AFTER_INTERVALS,
    Counters,
    PartitionReport,
    RecentError,
    Retrying,
    RunningJob,
    WorkerReport,
    WorkerState,
)
from .topics import commands_topic, reports_topic

__all__ = [
    "DEFAULT_READ_LIMIT",
    "GONE_AFTER_INTERVALS",
    "Counters",
    "PartitionReport",
    "QueueCommand",
    "RecentError",
    "ReportReader",
    "Retrying",
    "RunningJob",
    "WorkerReport",
    "WorkerState",
    "commands_topic",
    "confirmations",
    "pause_queue",
    "read_queue_commands",
    "read_reports",
    "reports_topic",
    "resume_queue",
]
