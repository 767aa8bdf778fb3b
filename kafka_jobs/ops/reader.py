"""Read the workers' latest reports (the dashboard's source): a bounded tail of the reports topic."""

from __future__ import annotations

import logging

from ..conf import KafkaJobsSettings, get_settings
from ..exceptions import ReportError
from .latest import LatestReader, read_latest
from .report import WorkerReport
from .topics import reports_topic

logger = logging.getLogger("kafka_jobs.ops")

# Records read at most from the end of the reports topic: with 5-second reports, 20 workers fill it in
# about 40 minutes, so every live worker is in it and stopped ones fall out after a while.
DEFAULT_READ_LIMIT = 10_000


def _decode(latest: dict[bytes, bytes | None]) -> list[WorkerReport]:
    reports = []
    for key, value in latest.items():
        if value is None:  # a tombstone: the worker was removed from the list
            continue
        try:
            reports.append(WorkerReport.from_json(value))
        except ReportError as exc:
            logger.warning("Skipping the undecodable report of %r: %s", key, exc)
    return sorted(reports, key=lambda report: report.worker_id)


def read_reports(
    settings: KafkaJobsSettings | None = None, *, limit: int = DEFAULT_READ_LIMIT, timeout: float = 5.0
) -> list[WorkerReport]:
    """Return the latest report of each worker, sorted by worker id (reads at most ``limit`` records)."""
    settings = settings or get_settings()
    return _decode(read_latest(settings, reports_topic(settings), limit=limit, timeout=timeout))


class ReportReader:
    """A long-lived reader: each ``refresh`` reads only the reports that arrived since the last one."""

    def __init__(self, settings: KafkaJobsSettings | None = None, *, limit: int = DEFAULT_READ_LIMIT) -> None:
        settings = settings or get_settings()
        self._reader = LatestReader(settings, reports_topic(settings), limit=limit)

    def refresh(self, timeout: float = 5.0) -> list[WorkerReport]:
        """Return the latest report of each worker, sorted by worker id."""
        return _decode(self._reader.refresh(timeout))

    def close(self) -> None:
        """Close its consumer."""
        self._reader.close()
