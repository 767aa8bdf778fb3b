"""``manage.py kafkaoutbox {list,retry,purge}``: the transactional outbox's pending and failed rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.management.argtypes import outbox_databases, positive_int
from kafka_jobs.outbox import inspection


class Command(BaseCommand):
    help = (
        "Show the transactional outbox (pending and failed rows), make failed rows pending again (retry), or "
        "delete them (purge). Failed rows are those the relay could never produce (too large, no such topic)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Count pending and failed rows and show the failed ones.")
        listing.add_argument("--limit", type=positive_int, help="Show at most N failed rows per database.")
        for name, text in (("retry", "Make failed rows pending again."), ("purge", "Delete failed rows for good.")):
            action = sub.add_parser(name, help=text)
            which = action.add_mutually_exclusive_group(required=True)
            which.add_argument("--ids", nargs="+", type=positive_int, metavar="ID", help="These failed rows.")
            which.add_argument("--all", action="store_true", help="Every failed row.")
        for action in sub.choices.values():
            action.add_argument(
                "--database", action="append", metavar="ALIAS", help="Database alias (repeatable; default: default)."
            )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = outbox_databases(options["database"])
        action = options["action"]
        for alias in aliases:
            if action == "list":
                summary = inspection.summary(alias)
                self.stdout.write(summary.describe())
                for row in inspection.failed_rows(alias, options["limit"]):
                    self.stdout.write("  " + inspection.describe_failed(row))
                continue
            ids = None if options["all"] else options["ids"]
            count = inspection.retry(alias, ids) if action == "retry" else inspection.purge(alias, ids)
            done = "made pending again" if action == "retry" else "deleted"
            self.stdout.write(f"{alias}: {count} failed row(s) {done}")
            if ids is not None and count < len(set(ids)):
                raise CommandError(f"{len(set(ids)) - count} of the given id(s) are not failed rows of {alias!r}.")
