"""``manage.py kafkascheduled``: what waits in each delay tier, and the recurring schedules' next and last fires."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.conf import get_settings
from kafka_jobs.delays.forwarder import group_id as delays_group
from kafka_jobs.delays.inspection import TierState, tier_states
from kafka_jobs.delays.tiers import label
from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.recurring.inspection import ScheduleState, schedule_states
from kafka_jobs.recurring.loader import get_recurring
from kafka_jobs.recurring.scheduler import group_id as scheduler_group


def _when(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    relative = f"in {_span(seconds)}" if seconds >= 0 else f"{_span(-seconds)} ago"
    return f"{moment.isoformat(timespec='seconds')} ({relative})"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _moment(ms: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms is not None else None


class Command(BaseCommand):
    help = "Show how many delayed jobs wait in each delay tier, and the recurring schedules' next and last fires."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON document instead of tables.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            settings = get_settings()
            recurring = get_recurring()
            tiers = tier_states(settings)
            schedules = schedule_states(settings, recurring)
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc
        now = dt.datetime.now(dt.UTC)  # after reading, so a fire during the read is not shown as future
        if options["json"]:
            document = {
                "now": now.isoformat(),
                "tiers": [tier.as_dict() for tier in tiers],
                "schedules": [schedule.as_dict() for schedule in schedules],
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        self._tiers(tiers, now, delays_group(settings))
        self._schedules(schedules, now, scheduler_group(settings))

    def _tiers(self, tiers: list[TierState], now: dt.datetime, group: str) -> None:
        self.stdout.write(f"Delay tiers (forwarder group {group}):")
        self.stdout.write(f"  {'TIER':<6} {'TOPIC':<48} {'WAITING':>9}  NEXT RELEASE")
        for tier in tiers:
            name = label(tier.delay_ms) if tier.delay_ms else "?"
            notes = []
            if not tier.configured:
                notes.append("not in DELAY_TIERS: still drained")
            if tier.partitions == 0:
                notes.append("MISSING: run kafkatopics create")
            elif not tier.complete:
                notes.append("some partitions did not answer: count incomplete")
            note = f"  [{'; '.join(notes)}]" if notes else ""
            waiting = f"{tier.waiting:,}"
            self.stdout.write(
                f"  {name:<6} {tier.topic:<48} {waiting:>9}  {_when(_moment(tier.next_release_ms), now)}{note}"
            )
        total = sum(tier.waiting for tier in tiers)
        self.stdout.write(f"  {total:,} delayed job message(s) waiting.")

    def _schedules(self, schedules: list[ScheduleState], now: dt.datetime, group: str) -> None:
        self.stdout.write("")
        if not schedules:
            self.stdout.write("No recurring jobs are declared (recurring_jobs in the routes module).")
            return
        self.stdout.write(f"Recurring schedules (scheduler group {group}):")
        for state in schedules:
            record = state.record
            if record is None:
                last = "never (no scheduler has seen this schedule yet)"
            elif record.last_tick is None:
                last = f"never (known since {record.since.isoformat(timespec='seconds')})"
            else:
                last = f"{_when(record.last_tick, now)}, job {record.job_id}"
            self.stdout.write(f"  {state.name}: {state.job}, {state.schedule}, missed={state.missed}")
            self.stdout.write(f"    next tick: {_when(state.next_tick, now)}")
            self.stdout.write(f"    last fire: {last}")
