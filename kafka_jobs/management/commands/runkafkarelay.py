"""``manage.py runkafkarelay``: produce the transactional outbox's rows to Kafka (until SIGINT/SIGTERM)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.management.argtypes import outbox_databases
from kafka_jobs.management.commands.runkafkaworker import configure_logging
from kafka_jobs.outbox.threads import RelayThreads
from kafka_jobs.worker import ExitCode, Shutdown


class Command(BaseCommand):
    help = (
        "Relay the transactional outbox: produce committed job rows to Kafka, delete them once acknowledged. "
        "Several relays may run on PostgreSQL; run one on other databases."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            action="append",
            metavar="ALIAS",
            help="Relay the outbox of this database (repeat for several; default: default).",
        )
        parser.add_argument("--burst", action="store_true", help="Exit once no pending row is left.")
        parser.add_argument(
            "--log-level",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="Level of the kafka_jobs loggers (default: the one LOGGING sets, else INFO).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["log_level"])
        aliases = outbox_databases(options["database"])
        try:
            settings = get_settings()
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc
        shutdown = Shutdown()
        shutdown.install()
        RelayThreads(settings, aliases, shutdown, burst=options["burst"]).run_until_stopped()
        if shutdown.exit_code is not ExitCode.OK:
            sys.exit(int(shutdown.exit_code))
