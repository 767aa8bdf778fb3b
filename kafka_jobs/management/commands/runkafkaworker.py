"""``manage.py runkafkaworker``: consume the routed topics and run their jobs."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from kafka_jobs.conf import KafkaJobsSettings, get_settings
from kafka_jobs.dbtables import migrate_command
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.internal_topics import create_internal_topics, missing_internal_topics
from kafka_jobs.management.argtypes import outbox_databases, port_number, positive_int, process_count
from kafka_jobs.ops.health import process_health_file
from kafka_jobs.ops.metrics import DEFAULT_METRICS_HOST, MetricsServer, process_metrics_port
from kafka_jobs.ops.monitor import WorkerMonitor
from kafka_jobs.outbox import claim
from kafka_jobs.outbox.threads import RelayThreads
from kafka_jobs.recurring.declaration import RecurringJob
from kafka_jobs.recurring.loader import get_recurring
from kafka_jobs.routing import Route, get_routes
from kafka_jobs.supervisor import SupervisedChild, Supervisor, SupervisorGaveUp, option_arguments, program
from kafka_jobs.timekeeper import Timekeeper
from kafka_jobs.topics import create_topics, missing_topics
from kafka_jobs.worker import ExitCode, Shutdown, Worker


def check_health_file_directory(option: str | None, setting: str | None) -> None:
    """Refuse a health file the worker could not write: it would run, and every probe would call it dead."""
    path, source = (option, "--health-file") if option else (setting, "KAFKA_JOBS['HEALTH_FILE']")
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(
            f"{source} {path!r}: the directory {directory} does not exist. Create it or choose another path."
        )
    if not os.access(directory, os.W_OK):
        raise CommandError(f"{source} {path!r}: this process cannot write to {directory}. Choose another path.")


def refuse_without_results_table() -> None:
    """Refuse to run tasks whose results could not be recorded (``migrate`` was not run)."""
    from kafka_jobs.tasks.results import missing_results_table

    alias = missing_results_table()
    if alias is not None:
        raise CommandError(
            f"TASKS keeps task results in the database, but the results table does not exist in database "
            f"{alias!r}: run {migrate_command(alias)}."
        )


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
        parser.add_argument(
            "--processes",
            type=process_count,
            default=1,
            metavar="N",
            help="Worker processes, each with its own consumer and threads, under a supervisor that restarts "
            "them ('auto': one per CPU; default 1: no supervisor).",
        )
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
            "--health-file",
            metavar="PATH",
            help="Touch this file every second while the poll loop turns (default: KAFKA_JOBS HEALTH_FILE); "
            "see kafkaworkerhealth.",
        )
        parser.add_argument(
            "--metrics-port",
            type=port_number,
            help="Serve Prometheus metrics on this port (needs pip install 'kafka-jobs[metrics]').",
        )
        parser.add_argument(
            "--metrics-host",
            default=DEFAULT_METRICS_HOST,
            help=f"Address the metrics endpoint listens on (default {DEFAULT_METRICS_HOST}; 0.0.0.0 for all).",
        )
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
        child = SupervisedChild.from_environ()
        if child is not None:
            child.start()
        scheduling_only = options["scheduling_only"]
        processes = options["processes"]
        if processes > 1:
            self._refuse_with_processes(options)
        try:
            settings = get_settings()
            check_health_file_directory(options["health_file"], settings.health_file)
            table = get_routes()
            recurring = get_recurring()
            routes = [] if scheduling_only else table.select(options["queues"]) if options["queues"] else list(table)
            if not routes and not scheduling_only:
                raise CommandError(f"No routes are declared in {settings.routes}: nothing to consume.")
            if processes > 1:  # each worker process checks (or creates) the topics itself
                self._supervise(processes, options, settings.shutdown_timeout, routes)
                return
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
        if not scheduling_only:
            refuse_without_results_table()
        relay_aliases = None if options["relay"] is None else outbox_databases(options["relay"])
        shutdown = Shutdown()
        shutdown.install()
        relays = RelayThreads(settings, relay_aliases, shutdown) if relay_aliases else None
        if relays is not None:
            relays.start()
        try:
            self._run(options, settings, routes, recurring, shutdown, child)
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
        child: SupervisedChild | None,
    ) -> None:
        scheduling_only = options["scheduling_only"]
        timekeeper = None if options["no_scheduling"] else Timekeeper(settings, recurring, shutdown)
        if scheduling_only:
            assert timekeeper is not None
            timekeeper.run_until_stopped()
            if shutdown.exit_code is not ExitCode.OK:
                sys.exit(int(shutdown.exit_code))
            return
        monitor = self._monitor(settings, options, child.index if child is not None else None)
        worker = Worker(
            settings,
            routes,
            concurrency=options["concurrency"],
            max_jobs=options["max_jobs"],
            burst=options["burst"],
            shutdown=shutdown,
            consumer_factory=monitor.consumer_factory(),
            executor=monitor.executor(),
            observer=monitor,
        )
        if timekeeper is not None:
            timekeeper.start()
        if child is not None:
            child.report_ready()
        try:
            code = worker.run()
        finally:
            if timekeeper is not None:
                timekeeper.close()
        if code is not ExitCode.OK:
            sys.exit(int(code))

    def _monitor(self, settings: KafkaJobsSettings, options: dict[str, Any], index: int | None) -> WorkerMonitor:
        """Return the worker's monitor (reports, queue pauses, health file), serving metrics if asked.

        Worker process ``index`` of ``--processes`` gets its own health file (FILE.<index>) and metrics port
        (PORT + index - 1).
        """
        health_file = options["health_file"] or settings.health_file
        if health_file:
            health_file = process_health_file(health_file, index)
        monitor = WorkerMonitor(settings, health_file=health_file)
        if options["metrics_port"] is not None:
            port = process_metrics_port(options["metrics_port"], index)
            try:  # closed by the monitor when the worker stopped
                monitor.metrics = MetricsServer(monitor, port, options["metrics_host"])
            except KafkaJobsError as exc:
                raise CommandError(str(exc)) from exc
        return monitor

    def _refuse_with_processes(self, options: dict[str, Any]) -> None:
        """Reject the options that have no meaning for several worker processes."""
        if options["max_jobs"] is not None:
            raise CommandError(
                "--max-jobs cannot be combined with --processes above 1: each process would stop after its own "
                "count and be restarted. Use --max-jobs with one process, or --burst to stop when drained."
            )
        if options["scheduling_only"]:
            raise CommandError(
                "--scheduling-only cannot be combined with --processes above 1: the delay forwarder and the "
                "recurring scheduler need no more than one process. Start it without --processes."
            )
        relayed = outbox_databases(options["relay"]) if options["relay"] is not None else []
        single = [alias for alias in relayed if not claim.several_relays_safe(alias)]
        if single:
            raise CommandError(
                f"--relay {' '.join(single)} cannot be combined with --processes above 1: every process would run "
                "a relay, and on databases other than PostgreSQL and SQLite only one relay may run (two produce "
                "rows twice). Run one 'manage.py runkafkarelay' beside the workers instead."
            )
        if django_settings.SETTINGS_MODULE is None:
            raise CommandError(
                "--processes above 1 starts worker processes that load the settings by module name, but these "
                "settings were made with settings.configure(). Use DJANGO_SETTINGS_MODULE or --settings."
            )

    def _supervise(self, processes: int, options: dict[str, Any], shutdown_timeout: float, routes: list[Route]) -> None:
        """Run ``processes`` copies of this command (one process each) under a supervisor; exit with its status."""
        parser = self.create_parser("manage.py", "runkafkaworker")
        arguments = option_arguments(parser, options, drop={"processes", "skip_checks"})
        command = [*program("runkafkaworker"), "runkafkaworker", *arguments, "--skip-checks"]
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": str(django_settings.SETTINGS_MODULE)}
        connections.close_all()  # the children open their own; nothing here is used after they start
        supervisor = Supervisor(command, processes, shutdown_timeout=shutdown_timeout, burst=options["burst"], env=env)
        try:
            code = supervisor.run()
        except SupervisorGaveUp as exc:
            raise CommandError(str(exc)) from exc
        if code is not ExitCode.OK:
            sys.exit(int(code))
