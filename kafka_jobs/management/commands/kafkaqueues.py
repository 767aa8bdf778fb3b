"""``manage.py kafkaqueues {list,pause,resume}``: see and steer the routed queues from a terminal.

``pause`` and ``resume`` send the same commands as the dashboard (``kafka_jobs.ops.pause_queue``);
``list`` shows each queue's lag, its latest command and which running workers confirmed it.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.management.argtypes import queue_name
from kafka_jobs.ops import WorkerState, confirmations, pause_queue, read_queue_commands, read_reports, resume_queue
from kafka_jobs.routing import get_routes


class Command(BaseCommand):
    help = "List the routed queues with their lag and pause state, or pause / resume one on every worker."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "pause", "resume"])
        parser.add_argument("queue", nargs="?", type=queue_name, help="The queue to pause or resume.")
        parser.add_argument("--by", default="", help="Who asks (default: the user running the command).")

    def handle(self, *args: Any, **options: Any) -> None:
        action, queue = options["action"], options["queue"]
        try:
            if action == "list":
                if queue is not None:
                    raise CommandError("list takes no queue.")
                self._list()
                return
            if queue is None:
                raise CommandError(f"{action} needs the queue's name: manage.py kafkaqueues {action} QUEUE")
            send = pause_queue if action == "pause" else resume_queue
            command = send(queue, by=options["by"] or _user())
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Asked every worker to {action} queue {queue!r} (command {command.id}); each confirms in its next "
            "report: see manage.py kafkaqueues list."
        )

    def _list(self) -> None:
        routes = get_routes()
        commands = read_queue_commands()
        reports = read_reports()
        running = [r for r in reports if r.state() is WorkerState.RUNNING]
        self.stdout.write("queue\tlag\tstate\tconfirmed\tpending")
        for queue in sorted(routes.by_queue):
            lag = sum(p.lag or 0 for r in running for p in r.partitions if p.queue == queue)
            command = commands.get(queue)
            if command is None:
                self.stdout.write(f"{queue}\t{lag}\trunning\t-\t-")
                continue
            confirmed, pending = confirmations(command, reports)
            state = "paused" if command.paused else "running"
            by = f" by {command.by}" if command.by else ""
            self.stdout.write(
                f"{queue}\t{lag}\t{state} ({command.action}{by} at {command.at:%Y-%m-%d %H:%M:%S}Z)\t"
                f"{len(confirmed)}\t{', '.join(pending) or '-'}"
            )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container without one)
        return ""
