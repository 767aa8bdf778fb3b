"""``manage.py prunetaskresults``: delete stored django.tasks results that finished long enough ago."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from kafka_jobs.dbtables import migrate_command
from kafka_jobs.models import TaskResultRecord
from kafka_jobs.tasks.models import FINISHED, finished_before, unmigrated_results_database

DEFAULT_DAYS = 14.0


def days(value: str) -> float:
    """Parse a number of days >= 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of days >= 0, got {value}")
    return number


class Command(BaseCommand):
    help = (
        "Delete stored task results (TASKS OPTIONS RESULTS='database') that finished, successfully or not, more "
        "than --days ago. READY and RUNNING results are never deleted: their tasks may still run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=days, default=DEFAULT_DAYS, help=f"Age of the results to delete (default {DEFAULT_DAYS:g})."
        )
        parser.add_argument("--failed-days", type=days, help="Keep failed results this long instead (default: --days).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        alias = unmigrated_results_database()
        if alias is not None:
            raise CommandError(
                f"The task results table does not exist in database {alias!r}: run {migrate_command(alias)}."
            )
        now = timezone.now()
        failed_days = options["failed_days"]
        ages = {"SUCCESSFUL": options["days"], "FAILED": options["days"] if failed_days is None else failed_days}
        total = 0
        for status in FINISHED:
            age = ages[status]
            selected = finished_before(now - dt.timedelta(days=age), status)
            count = selected.count() if options["dry_run"] else selected.delete()[0]
            total += count
            self.stdout.write(f"{status}: {count} result(s) finished more than {age:g} day(s) ago")
        verb = "would be deleted (--dry-run)" if options["dry_run"] else "deleted"
        left = TaskResultRecord.objects.count()
        self.stdout.write(f"{total} task result(s) {verb}; {left} stored")
