"""What ``manage.py kafkaoutbox`` shows and does: counts, failed rows, retry and purge of failed rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from django.db.models import Min, QuerySet
from django.utils import timezone

from ..dbtables import table_exists
from .models import OutboxMessage


@dataclasses.dataclass(frozen=True)
class Summary:
    """The state of one database's outbox."""

    alias: str
    pending: int
    failed: int
    oldest_pending: dt.datetime | None

    def describe(self) -> str:
        """One line for people."""
        age = ""
        if self.oldest_pending is not None:
            age = f" (oldest {(timezone.now() - self.oldest_pending).total_seconds():.1f}s old)"
        return f"{self.alias}: {self.pending} pending{age}, {self.failed} failed"


def summary(alias: str) -> Summary:
    """Count pending and failed rows of database ``alias``."""
    rows = OutboxMessage.objects.using(alias)
    pending = rows.filter(failed_at__isnull=True)
    return Summary(
        alias=alias,
        pending=pending.count(),
        failed=rows.filter(failed_at__isnull=False).count(),
        oldest_pending=pending.aggregate(oldest=Min("created_at"))["oldest"],
    )


def failed_rows(alias: str, limit: int | None = None) -> list[OutboxMessage]:
    """Return the failed rows, oldest first (the message bodies are not loaded)."""
    rows = OutboxMessage.objects.using(alias).filter(failed_at__isnull=False).defer("value").order_by("id")
    return list(rows[:limit] if limit else rows)


def describe_failed(row: OutboxMessage) -> str:
    """One line per failed row."""
    where = row.topic if row.partition is None else f"{row.topic}[{row.partition}]"
    return f"{row.id}  {row.failed_at:%Y-%m-%d %H:%M:%S}  {row.job_name} {row.job_id} -> {where}: {row.error}"


def _failed(alias: str, ids: Sequence[int] | None) -> QuerySet[OutboxMessage]:
    rows = OutboxMessage.objects.using(alias).filter(failed_at__isnull=False)
    return rows if ids is None else rows.filter(id__in=ids)


def retry(alias: str, ids: Sequence[int] | None) -> int:
    """Make failed rows (those in ``ids``, or all) pending again; return how many.

    A row keeps its id: it goes before the newer rows of its lane.
    """
    return _failed(alias, ids).update(failed_at=None, error="")


def purge(alias: str, ids: Sequence[int] | None) -> int:
    """Delete failed rows (those in ``ids``, or all) for good; return how many."""
    return _failed(alias, ids)._raw_delete(alias)


def unmigrated(aliases: Sequence[str]) -> list[str]:
    """Return the aliases whose database has no outbox table (``migrate kafka_jobs`` was not run there)."""
    return [alias for alias in aliases if not table_exists(OutboxMessage, alias)]
