"""``manage.py kafkaworkerhealth``: exit non-zero when a worker's poll loop or consumer is stuck (a liveness probe)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import KafkaJobsError, ReportError
from kafka_jobs.management.argtypes import positive_seconds
from kafka_jobs.ops.health import DEFAULT_MAX_CONSUMER_AGE, DEFAULT_MAX_LOOP_AGE, Health, health_files

# Exit statuses (2 and 3 come from Health.problem).
NO_FILE = 1


class Command(BaseCommand):
    help = (
        "Check the health file of a runkafkaworker started with --health-file (or KAFKA_JOBS HEALTH_FILE), or those "
        "of all its worker processes (FILE.<n>) with --processes: exit 0 if every poll loop turns and every consumer "
        "reaches its group, 1 if there is no health file, 2 if a loop is stuck, 3 if a consumer is."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file", metavar="PATH", help="The worker's health file (default: KAFKA_JOBS HEALTH_FILE)."
        )
        parser.add_argument(
            "--max-loop-age",
            type=positive_seconds,
            default=DEFAULT_MAX_LOOP_AGE,
            help=f"Seconds the poll loop may go without turning (default {DEFAULT_MAX_LOOP_AGE:.0f}).",
        )
        parser.add_argument(
            "--max-consumer-age",
            type=positive_seconds,
            default=DEFAULT_MAX_CONSUMER_AGE,
            help=f"Seconds the consumer may go without its group coordinator (default {DEFAULT_MAX_CONSUMER_AGE:.0f}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            path = options["file"] or get_settings().health_file
        except KafkaJobsError as exc:
            raise CommandError(str(exc), returncode=NO_FILE) from exc
        if not path:
            raise CommandError("No health file: pass --file or set KAFKA_JOBS['HEALTH_FILE'].", returncode=NO_FILE)
        files = health_files(path)
        if not files:
            raise CommandError(
                f"No health file {path} (nor {path}.<n> of --processes): the worker is not running, has not "
                "started yet, or was not started with --health-file.",
                returncode=NO_FILE,
            )
        for file in files:
            self._check(file, options)

    def _check(self, path: str, options: dict[str, Any]) -> None:
        try:
            health = Health.read(path)
        except OSError as exc:
            raise CommandError(f"Cannot read the health file {path} ({exc.strerror}).", returncode=NO_FILE) from exc
        except ReportError as exc:
            raise CommandError(str(exc), returncode=NO_FILE) from exc
        problem = health.problem(time.time(), options["max_loop_age"], options["max_consumer_age"])
        if problem is not None:
            status, why = problem
            raise CommandError(f"Unhealthy: {why}.", returncode=status)
        if options["verbosity"] >= 1:
            self.stdout.write(f"Healthy: worker {health.worker_id} (pid {health.pid}).")
