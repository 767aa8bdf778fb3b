"""The worker's observer: applies queue commands, sends status reports, touches the health file.

Everything here runs on the poll thread, between two turns of the loop, and costs nothing on most turns:
a report is built every ``REPORT_INTERVAL`` from the ledger (under its lock, briefly), the stats the job
threads keep, and offsets the consumer knows locally (no broker round trip).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, TopicPartition

from ..conf import KafkaJobsSettings
from ..worker.consumer import CommitCallback, JobConsumer, KafkaConsumerFactory, consumer_config
from ..worker.shutdown import ExitCode
from .commands import CommandWatcher
from .executor import ObservedExecutor
from .health import STATS_INTERVAL_MS, HealthFile
from .report import PartitionReport, Retrying, RunningJob, WorkerReport, WorkerState
from .stats import JobStats, job_of
from .topics import reports_topic

if TYPE_CHECKING:
    from ..worker.partition import PartitionState
    from ..worker.worker import Worker

logger = logging.getLogger("kafka_jobs.ops")

# How long a starting worker waits to read the queue commands before it joins the group.
COMMANDS_CATCH_UP_TIMEOUT = 10.0


def rss_bytes() -> int | None:
    """Return the resident set size of this process (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _wall(monotonic_at: float | None, now_wall: dt.datetime, now_mono: float) -> dt.datetime | None:
    if monotonic_at is None:
        return None
    return now_wall + dt.timedelta(seconds=monotonic_at - now_mono)


class StatsConsumerFactory(KafkaConsumerFactory):
    """The worker's consumer, with librdkafka's statistics sent to ``on_stats`` (unless CONSUMER sets its own)."""

    def __init__(self, settings: KafkaJobsSettings, health: HealthFile) -> None:
        super().__init__(settings)
        self.health = health

    def __call__(self, on_commit: CommitCallback) -> JobConsumer:
        """Return a new consumer."""
        config = {**consumer_config(self.settings), "on_commit": on_commit}
        if "stats_cb" in config or str(config.get("statistics.interval.ms", STATS_INTERVAL_MS)) == "0":
            self.health.tracks_consumer = False
        else:
            config["stats_cb"] = self.health.on_stats
            config.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        consumer: JobConsumer = Consumer(config)
        return consumer


class WorkerMonitor:
    """Reports, queue pauses and the health file of one worker process (pass it as ``Worker(observer=...)``)."""

    def __init__(self, settings: KafkaJobsSettings, *, health_file: str | None = None) -> None:
        self.settings = settings
        self.stats = JobStats()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.started_at = dt.datetime.now(dt.UTC)
        self.interval = settings.report_interval
        self.health = HealthFile(health_file, self.worker_id) if health_file else None
        self.commands: CommandWatcher | None = None
        self.worker: Worker | None = None
        self.applied: dict[str, str] = {}  # queue -> id of the command applied
        self.paused_queues: list[str] = []
        self.offsets: dict[tuple[str, int], tuple[int | None, int | None]] = {}  # (position, end)
        self.last_report: WorkerReport | None = None
        self.metrics: Any = None  # the metrics endpoint (kafka_jobs.ops.metrics.MetricsServer), closed at stop
        self._applied_version = -1
        self._next_report = 0.0
        self._previous_runs = (time.monotonic(), 0)  # when, and runs counted then (for jobs_per_second)

    def consumer_factory(self) -> KafkaConsumerFactory:
        """Return the worker's consumer factory: with the health file, librdkafka's statistics feed it."""
        if self.health is None:
            return KafkaConsumerFactory(self.settings)
        return StatsConsumerFactory(self.settings, self.health)

    def queue_of_topic(self) -> dict[str, str]:
        """Return topic -> queue of the worker's routes."""
        return {topic: route.queue for topic, route in self.worker.routes.items()} if self.worker else {}

    def executor(self) -> ObservedExecutor:
        """Return the executor that counts jobs for this monitor (``Worker(executor=...)``)."""
        return ObservedExecutor(self.settings, self.stats)

    # WorkerObserver ---------------------------------------------------------------------------------------

    def started(self, worker: Worker) -> None:
        """Start following commands; apply the current ones before the first partition is assigned."""
        self.worker = worker
        self.stats.connect()
        self.commands = CommandWatcher(self.settings)
        self.commands.start()
        if not self.commands.caught_up.wait(COMMANDS_CATCH_UP_TIMEOUT):
            logger.warning("Queue commands not read within %.0fs; paused queues apply once read")
        self._apply_commands()
        if self.health is not None:
            self.health.touch()

    def turn(self) -> None:
        """Apply new commands; send a report when one is due; touch the health file."""
        commands = self.commands
        if commands is not None and commands.version != self._applied_version:
            self._apply_commands()
            self._next_report = 0.0  # confirm at once
        now = time.monotonic()
        if now >= self._next_report:
            self._next_report = now + self.interval
            self.send(WorkerState.RUNNING)
        if self.health is not None:
            self.health.maybe_touch(now)

    def stopping(self) -> None:
        """Say that the worker stops (its running jobs finish first)."""
        self.send(WorkerState.STOPPING)

    def stopped(self, code: ExitCode) -> None:
        """Send the last report and release the thread, consumer and producer."""
        self.send(WorkerState.STOPPED, offsets=False)
        if self.commands is not None:
            self.commands.close()
        self.stats.disconnect()
        if self.health is not None:
            self.health.remove()
        if self.metrics is not None:
            self.metrics.close()

    # Commands ---------------------------------------------------------------------------------------------

    def _apply_commands(self) -> None:
        assert self.worker is not None and self.commands is not None
        self._applied_version = self.commands.version
        commands = self.commands.commands
        routes = {route.queue: route for route in self.worker.routes.values()}
        paused = sorted(q for q, c in commands.items() if c.paused and q in routes)
        self.worker.ledger.hold(frozenset(routes[q].topic for q in paused))
        if paused != self.paused_queues:
            logger.info("Paused queues: %s", ", ".join(paused) or "none")
        self.paused_queues = paused
        self.applied = {q: c.id for q, c in commands.items() if q in routes}

    # Reports ----------------------------------------------------------------------------------------------

    def send(self, status: WorkerState, *, offsets: bool = True) -> None:
        """Build and produce a report (never raises: a report must not stop the worker)."""
        if self.commands is None or self.worker is None:
            return
        try:
            if offsets:
                self._read_offsets()
            report = self.build(status)
        except Exception:
            logger.exception("Could not build the worker report")
            return
        self.last_report = report
        self.commands.produce(reports_topic(self.settings), self.worker_id.encode(), report.to_json())

    def _read_offsets(self) -> None:
        """Read positions and high watermarks the consumer knows (local calls on the poll thread)."""
        worker = self.worker
        assert worker is not None
        consumer: Any = worker.consumer
        with worker.ledger.cond:
            keys = list(worker.ledger.partitions)
        offsets: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        try:
            positions = consumer.position([TopicPartition(t, p) for t, p in keys]) if keys else []
        except Exception:  # a consumer without it (tests' fakes) or in a bad state: no offsets this time
            positions = []
        by_key = {(tp.topic, tp.partition): tp.offset for tp in positions}
        for key in keys:
            end: int | None = None
            try:
                _low, high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
                end = high if high >= 0 else None
            except Exception:
                end = None
            position = by_key.get(key)
            offsets[key] = (position if position is not None and position >= 0 else None, end)
        self.offsets = offsets

    def build(self, status: WorkerState) -> WorkerReport:
        """Return this worker's report now."""
        worker = self.worker
        assert worker is not None
        now_wall, now_mono = dt.datetime.now(dt.UTC), time.monotonic()
        ledger = worker.ledger
        with ledger.cond:
            partitions = [self._partition(state, now_wall, now_mono) for state in ledger.partitions.values()]
        running = []
        for message, since in list(self.stats.running.values()):
            job, job_id = job_of(message)
            started = dt.datetime.fromtimestamp(since, dt.UTC)
            running.append(RunningJob(job, job_id, message.topic(), message.partition(), message.offset(), started))
        queue_of = self.queue_of_topic()
        counters = self.stats.totals()
        runs = counters.succeeded + counters.failed
        since, before = self._previous_runs
        self._previous_runs = (now_mono, runs)
        rate = (runs - before) / (now_mono - since) if now_mono > since else 0.0
        return WorkerReport(
            worker_id=self.worker_id,
            status=status.value,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            reported_at=now_wall,
            interval=self.interval,
            group_id=self.settings.group_id,
            queues=sorted(queue_of.values()),
            concurrency=worker.concurrency,
            partitions=sorted(partitions, key=lambda p: (p.topic, p.partition)),
            running=running,
            counters=counters,
            queue_counters={
                queue_of.get(topic, topic): stats.counters() for topic, stats in list(self.stats.topics.items())
            },
            recent_errors=list(self.stats.recent_errors),
            rss_bytes=rss_bytes(),
            paused_queues=list(self.paused_queues),
            commands=dict(self.applied),
            jobs_per_second=round(rate, 3),
        )

    def _partition(self, state: PartitionState, now_wall: dt.datetime, now_mono: float) -> PartitionReport:
        """Describe one partition (under the ledger's lock)."""
        key = (state.topic, state.partition)
        position, end = self.offsets.get(key, (None, None))
        committed = state.sent.offset if state.sent is not None else None
        # Before this worker's first commit, lag counts from its oldest unfinished message: the position is past
        # everything fetched, which would show a lag of 0 while the fetched jobs wait.
        unfinished = min((lane.messages[0][0].offset() for lane in state if lane.messages), default=None)
        start = committed if committed is not None else unfinished if unfinished is not None else position
        lag = max(0, end - start) if end is not None and start is not None else None
        retrying = []
        last_error = self.stats.last_error.get(key)
        for lane in state:
            if lane.retry_at is None or not lane.messages:
                continue
            message = lane.messages[0][0]
            offset = message.offset()
            job, job_id = job_of(message)
            error = last_error[1] if last_error is not None and last_error[0] == offset else ""
            failures = state.failures.get(offset, 0)
            retrying.append(Retrying(offset, job, job_id, failures, error, _wall(lane.retry_at, now_wall, now_mono)))
        return PartitionReport(
            topic=state.topic,
            queue=state.route.queue,
            partition=state.partition,
            committed=committed,
            position=position,
            end=end,
            lag=lag,
            buffered=state.buffered,
            running=len(state.running_offsets),
            paused=state.paused or state.held,
            held=state.held,
            retrying=retrying,
        )
