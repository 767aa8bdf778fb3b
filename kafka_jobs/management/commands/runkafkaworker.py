"""``manage.py runkafkaworker``: consume the routed topics and run their jobs."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.conf import KafkaJobsSettings, get_settings
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.internal_topics import create_internal_topics, missing_internal_topics
from kafka_jobs.management.argtypes import outbox_databases, positive_int
from kafka_jobs.outbox.threads import RelayThreads
from kafka_jobs.recurring.declaration import RecurringJob
from kafka_jobs.recurring.loader import get_recurring
from kafka_jobs.routing import Route, get_routes
from kafka_jobs.timekeeper import Timekeeper
from kafka_jobs.topics import create_topics, missing_topics
from kafka_jobs.worker import ExitCode, KafkaConsumerFactory, Shutdown, Worker


def configure_logging(level: str | None) -> None:
    """Apply ``--log-level``, and show kafka_jobs logs on stderr only if the project's LOGGING shows them nowhere.

    The project's handlers (on ``kafka_jobs`` or any ancestor, the root logger included) are left alone;
    without ``--log-level`` the level LOGGING gives ``kafka_jobs`` is kept, or INFO if it gives none.
    """
    logger = logging.getLogger("kafka_jobs")
    if level is not None:
        logger.setLevel(level)
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d %(threadName)s] %(message)s"))
        logger.addHandler(handler)


class Command(BaseCommand):
    help = "Run background jobs from the Kafka topics declared in kafka_routes (until SIGINT/SIGTERM)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queues", nargs="+", metavar="QUEUE", help="Consume only these routed queues.")
        parser.add_argument("--concurrency", type=positive_int, help="Job threads (default: KAFKA_JOBS CONCURRENCY).")
        parser.add_argument("--max-jobs", type=positive_int, help="Exit after this many jobs completed.")
        parser.add_argument("--burst", action="store_true", help="Exit when every partition is drained.")
        parser.add_argument("--create-topics", action="store_true", help="Create missing routed topics first.")
        parser.add_argument(
            "--log-level",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="Level of the kafka_jobs loggers (default: the one LOGGING sets, else INFO).",
        )
        parser.add_argument("--skip-checks", action="store_true", help="Skip system checks.")
        parser.add_argument(
            "--relay",
            nargs="*",
            metavar="ALIAS",
            help="Also relay the transactional outbox of these databases (none named: default) on a thread.",
        )
        scheduling = parser.add_mutually_exclusive_group()
        scheduling.add_argument(
            "--no-scheduling",
            action="store_true",
            help="Run jobs only: no delay forwarder, no recurring scheduler (other workers must run them).",
        )
        scheduling.add_argument(
            "--scheduling-only",
            action="store_true",
            help="Run only the delay forwarder and the recurring scheduler, no jobs.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["skip_checks"]:  # as runserver does: a worker runs the project's code too
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        configure_logging(options["log_level"])
        scheduling_only = options["scheduling_only"]
        try:
            settings = get_settings()
            table = get_routes()
            recurring = get_recurring()
            routes = [] if scheduling_only else table.select(options["queues"]) if options["queues"] else list(table)
            if not routes and not scheduling_only:
                raise CommandError(f"No routes are declared in {settings.routes}: nothing to consume.")
            if options["create_topics"]:
                create_topics(settings, routes)
                create_internal_topics(settings, recurring=bool(recurring))
            missing = missing_topics(settings, routes) + missing_internal_topics(settings, recurring=bool(recurring))
            if missing:
                raise CommandError(
                    f"Topic(s) {', '.join(missing)} do not exist. Create them with 'manage.py kafkatopics create' "
                    "or start the worker with --create-topics."
                )
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc
        relay_aliases = None if options["relay"] is None else outbox_databases(options["relay"])
        shutdown = Shutdown()
        shutdown.install()
        relays = RelayThreads(settings, relay_aliases, shutdown) if relay_aliases else None
        if relays is not None:
            relays.start()
        try:
            self._run(options, settings, routes, recurring, shutdown)
        finally:
            if relays is not None:
                relays.close()

    def _run(
        self,
        options: dict[str, Any],
        settings: KafkaJobsSettings,
        routes: list[Route],
        recurring: tuple[RecurringJob, ...],
        shutdown: Shutdown,
    ) -> None:
        scheduling_only = options["scheduling_only"]
        timekeeper = None if options["no_scheduling"] else Timekeeper(settings, recurring, shutdown)
        if scheduling_only:
            assert timekeeper is not None
            timekeeper.run_until_stopped()
            if shutdown.exit_code is not ExitCode.OK:
                sys.exit(int(shutdown.exit_code))
            return
        worker = Worker(
            settings,
            routes,
            concurrency=options["concurrency"],
            max_jobs=options["max_jobs"],
            burst=options["burst"],
            shutdown=shutdown,
            consumer_factory=KafkaConsumerFactory(settings),
        )
        if timekeeper is not None:
            timekeeper.start()
        try:
            code = worker.run()
        finally:
            if timekeeper is not None:
                timekeeper.close()
        if code is not ExitCode.OK:
            sys.exit(int(code))
