"""``manage.py kafkaworkers``: the workers' latest reports (state, partitions, lag, running jobs, counters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.ops import WorkerState, read_reports


class Command(BaseCommand):
    help = "Show each worker's latest report: state, lag, running and retrying jobs, counters, recent errors."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Also show stopped and gone workers (default: running and stopping)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            reports = read_reports()
        except KafkaJobsError as exc:
            raise CommandError(str(exc)) from exc
        now = dt.datetime.now(dt.UTC)
        shown = 0
        for report in reports:
            state = report.state(now)
            if not options["all"] and state in (WorkerState.STOPPED, WorkerState.GONE):
                continue
            shown += 1
            age = (now - report.reported_at).total_seconds()
            c = report.counters
            self.stdout.write(
                f"{report.worker_id}  {state.value}  reported {age:.0f}s ago  lag {report.total_lag}  "
                f"running {len(report.running)}/{report.concurrency}  {report.jobs_per_second:g} jobs/s  "
                f"succeeded {c.succeeded} failed {c.failed} retried {c.retried} discarded {c.discarded} "
                f"dead-lettered {c.dead_lettered}"
            )
            for partition in report.partitions:
                flags = [name for name, on in (("held", partition.held), ("paused", partition.paused)) if on]
                self.stdout.write(
                    f"  {partition.topic}/{partition.partition}  committed {partition.committed}  end {partition.end}  "
                    f"lag {partition.lag}  {' '.join(flags)}"
                )
                for retry in partition.retrying:
                    at = f" at {retry.retry_at:%H:%M:%S}Z" if retry.retry_at else ""
                    self.stdout.write(
                        f"    retrying @{retry.offset} {retry.job} {retry.job_id} after {retry.failures} failure(s)"
                        f"{at}: {retry.error}"
                    )
            for job in report.running:
                self.stdout.write(
                    f"  running {job.job} {job.job_id} {job.topic}/{job.partition}@{job.offset} for "
                    f"{(now - job.since).total_seconds():.0f}s"
                )
        if not shown:
            self.stdout.write("No running workers." if not options["all"] else "No worker reports.")
