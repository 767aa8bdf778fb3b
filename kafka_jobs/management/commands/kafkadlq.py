"""``manage.py kafkadlq {list,replay}``: browse a dead letter queue, or replay its messages to their source."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.conf import get_settings
from kafka_jobs.deadletter import (
    DeadLetter,
    ReplayState,
    ledger_topic,
    parse_offset,
    read_dead_letters,
    replay_dead_letters,
)
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.management.argtypes import positive_int
from kafka_jobs.routing import Route, get_routes


def offset_arg(value: str) -> tuple[int | None, int]:
    """argparse type: ``OFFSET`` or ``PARTITION:OFFSET``."""
    try:
        return parse_offset(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not OFFSET or PARTITION:OFFSET (whole numbers >= 0)") from None


class Command(BaseCommand):
    help = (
        "List the messages of a dead letter queue, or replay them to their source topic (each once: replays "
        "are recorded in the topic <dlq topic>.replays)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Show dead-lettered messages (oldest first).")
        listing.add_argument("--queue", help="Only this routed queue's DLQ (default: every route with a DLQ).")
        listing.add_argument("--limit", type=positive_int, help="Show only the N most recent messages per DLQ.")
        replay = sub.add_parser("replay", help="Produce messages back to their source topic.")
        replay.add_argument("--queue", help="The routed queue whose DLQ to replay (needed if several have one).")
        which = replay.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--offsets", nargs="+", type=offset_arg, metavar="OFFSET", help="DLQ offsets (or PARTITION:OFFSET)."
        )
        which.add_argument("--all", action="store_true", help="Every pending message (stubs are passed over).")
        replay.add_argument("--force", action="store_true", help="Replay selected offsets even if already replayed.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            routes = self._routes(options["queue"])
            if options["action"] == "list":
                for route in routes:
                    self._list(route, options["limit"])
            else:
                if len(routes) > 1:
                    names = ", ".join(r.queue for r in routes)
                    raise CommandError(f"Several queues have a dead letter queue ({names}): choose one with --queue.")
                self._replay(routes[0], None if options["all"] else options["offsets"], options["force"])
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc

    def _routes(self, queue: str | None) -> list[Route]:
        table = get_routes()
        routes = table.select([queue]) if queue else list(table)
        with_dlq = [r for r in routes if r.dead_letter_queue is not None]
        if not with_dlq:
            where = f"Queue {queue!r} has" if queue else "No route has"
            raise CommandError(f"{where} no dead_letter_queue in {get_settings().routes}.")
        return with_dlq

    def _list(self, route: Route, limit: int | None) -> None:
        assert route.dead_letter_queue is not None
        topic = route.dead_letter_queue.topic
        letters = read_dead_letters(topic, limit=limit)
        counts = ", ".join(f"{sum(d.state is s for d in letters)} {s.value}" for s in ReplayState)
        self.stdout.write(f"{topic} (queue {route.queue}): {len(letters)} message(s) shown: {counts}")
        for letter in letters:
            self.stdout.write(self._line(letter))

    @staticmethod
    def _line(letter: DeadLetter) -> str:
        job = f"{letter.job_name or '(undecodable)'} id={letter.job_id or '?'}"
        source = letter.source or "?"
        attempts = letter.attempts if letter.attempts is not None else "?"
        stub = f"  STUB ({letter.original_bytes or '?'} bytes left out: {letter.stub})" if letter.stub else ""
        return (
            f"  {letter.partition}:{letter.offset}  {letter.state.value:11}  {letter.failed_at or '?'}  {job}  "
            f"from {source}  attempts={attempts}  {letter.error[:200]}{stub}"
        )

    def _replay(self, route: Route, offsets: list[tuple[int | None, int]] | None, force: bool) -> None:
        assert route.dead_letter_queue is not None
        topic = route.dead_letter_queue.topic
        result = replay_dead_letters(topic, offsets=offsets, force=force)
        for letter in result.replayed:
            self.stdout.write(f"replayed {letter.partition}:{letter.offset} -> {letter.source}  {letter.job_name}")
        if result.passed_over:
            passed = ", ".join(f"{d.partition}:{d.offset}" for d in result.passed_over)
            self.stdout.write(
                f"passed over: {passed} (stubs: the message was too large to dead-letter, nothing to replay; "
                "see 'kafkadlq list')"
            )
        self.stdout.write(
            f"{len(result.replayed)} message(s) replayed from {topic}; recorded in {ledger_topic(topic)}."
        )
