"""``manage.py kafkatopics {create,list}``: create the routed topics, or show them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.internal_topics import create_internal_topics, internal_topics
from kafka_jobs.recurring.loader import get_recurring
from kafka_jobs.routing import get_routes
from kafka_jobs.topics import create_topics, existing_topics, topics_of


class Command(BaseCommand):
    help = (
        "Create the topics declared in kafka_routes, the delay tier topics and the schedule topic (idempotent), "
        "or list them with their state."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create", "list"])

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            settings = get_settings()
            routes = list(get_routes())
            recurring = bool(get_recurring())
            internal = internal_topics(settings, recurring=recurring)
            if options["action"] == "create":
                created = create_topics(settings, routes) + create_internal_topics(settings, recurring=recurring)
                if options["verbosity"] >= 1:
                    for name in created:
                        self.stdout.write(f"created {name}")
                    existed = len(topics_of(routes)) + len(internal) - len(created)
                    self.stdout.write(f"{len(created)} topic(s) created, {existed} existed.")
                return
            existing = existing_topics(settings)
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc
        for name, (partitions, _replication, _config) in {**topics_of(routes), **internal}.items():
            state = f"{existing[name]} partitions" if name in existing else "MISSING"
            self.stdout.write(f"{name}\twanted {partitions} partitions\t{state}")
