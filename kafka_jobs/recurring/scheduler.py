"""The recurring scheduler: the owner of the one-partition schedule topic enqueues each schedule's ticks.

Every worker process runs a scheduler consumer in the group ``<GROUP_ID>.scheduler``; Kafka gives the
topic's single partition to one of them, which makes it the scheduler (no leader is elected by hand). On
taking over it reads the topic to its end, so it knows the last fire of every schedule, whoever wrote it.
Each fire enqueues the tick's job (acknowledged), then records the fire (acknowledged): a crash in
between enqueues that tick again after the takeover, with the same deterministic job id. Before firing,
the owner commits its position in the schedule topic: a process that lost its membership without
noticing yet (a zombie) fails that commit and does not fire.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from .. import clock, signals
from ..backends.kafka import build_message
from ..conf import KafkaJobsSettings
from ..exceptions import EnqueueError
from ..internal_topics import schedule_topic
from ..job import Job
from ..producer import OutgoingMessage, get_producer
from ..serializer import get_serializer
from ..worker.consumer import consumer_config
from .declaration import RecurringJob
from .fires import FireRecord, tick_to_fire
from .loader import job_class, queue_of

logger = logging.getLogger("kafka_jobs.recurring")

POLL_TIMEOUT = 1.0
RETRY_DELAY = dt.timedelta(seconds=1)


def group_id(settings: KafkaJobsSettings) -> str:
    """Return the consumer group of the schedulers; the owner of the schedule partition is the scheduler."""
    return f"{settings.group_id}.scheduler"


def enqueue_tick(recurring: RecurringJob, tick: dt.datetime) -> Job:
    """Produce the job of ``tick`` to its queue and wait for the acknowledgement; return the job."""
    cls = job_class(recurring)
    job = cls.restore(list(recurring.args), dict(recurring.kwargs), recurring.job_id(tick))
    job.queue_name = queue_of(recurring)
    job.enqueued_at = clock.now()
    get_producer().produce([build_message(job, get_serializer().dumps(job))], sync=True)
    job.successfully_enqueued = True
    signals.job_enqueued.send(cls, job=job)
    return job


class RecurringScheduler:
    """Own the schedule topic when Kafka says so, and fire the ticks of ``recurring`` while owning it."""

    def __init__(
        self,
        settings: KafkaJobsSettings,
        recurring: tuple[RecurringJob, ...],
        *,
        stop: threading.Event | None = None,
        consumer_factory: Callable[[dict[str, Any]], Any] = Consumer,
        clock: Callable[[], dt.datetime] = clock.now,
        enqueue: Callable[[RecurringJob, dt.datetime], Job] = enqueue_tick,
    ) -> None:
        self.settings = settings
        self.recurring = recurring
        self.topic = schedule_topic(settings)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.enqueue = enqueue
        self.records: dict[str, FireRecord] = {}
        self.owner = False  # this process holds the schedule partition
        self.loaded = False  # ... and has read it to its end
        self.position = 0  # the offset after the last record read
        self.fired = 0
        self._retry_at: dict[str, dt.datetime] = {}
        self._consumer_factory = consumer_factory
        self._consumer: Any = None

    def run(self) -> None:
        """Take part in the scheduler group until ``stop`` is set; fire ticks while owning the schedule topic."""
        self.open()
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.close()

    def open(self) -> None:
        """Create the consumer and subscribe to the schedule topic."""
        config = {
            **consumer_config(self.settings),
            "group.id": group_id(self.settings),
            # One partition: the eager protocol lets the new owner start reading from the beginning.
            "partition.assignment.strategy": "range",
        }
        self._consumer = self._consumer_factory(config)
        self._consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        logger.info(
            "Recurring scheduler started: %d schedule(s), group %s", len(self.recurring), group_id(self.settings)
        )

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()

    def step(self) -> None:
        """Poll once; fire what is due if this process is the scheduler."""
        message = self._consumer.poll(self._poll_timeout())
        if message is not None:
            self._read(message)
        if self.owner and self.loaded:
            self._fire_due()

    def _poll_timeout(self) -> float:
        if not (self.owner and self.loaded):
            return POLL_TIMEOUT
        now = self.clock()
        wakes = [self._retry_at.get(item.name) or item.schedule.next_after(now) for item in self.recurring]
        soonest = min((wake for wake in wakes if wake is not None), default=None)
        if soonest is None:
            return POLL_TIMEOUT
        return max(0.0, min(POLL_TIMEOUT, (soonest - now).total_seconds()))

    def _read(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self.position = message.offset()
                if self.owner and not self.loaded:
                    self.loaded = True
                    self._took_over()
                return
            if error.fatal():
                raise KafkaException(error)
            logger.warning("Recurring scheduler consumer error: %s", error.str())
            return
        self.position = message.offset() + 1
        record = FireRecord.decode(message.value())
        if record is None:
            logger.warning("Ignoring an unreadable record at %s@%d", self.topic, message.offset())
            return
        known = self.records.get(record.name)
        if known is None or _progress(record) >= _progress(known):
            self.records[record.name] = record

    def _took_over(self) -> None:
        new = sum(item.name not in self.records for item in self.recurring)
        logger.info(
            "Recurring scheduler: this process now fires the %d schedule(s) (%d seen for the first time)",
            len(self.recurring),
            new,
        )

    def _fire_due(self) -> None:
        """Register schedules seen for the first time, and fire every schedule whose tick has come."""
        now = self.clock()
        new, due = [], []
        for item in self.recurring:
            retry_at = self._retry_at.get(item.name)
            if retry_at is not None and now < retry_at:
                continue
            record = self.records.get(item.name)
            if record is None:
                new.append(FireRecord(item.name, since=now, schedule=item.schedule.describe()))
            elif (tick := tick_to_fire(item.schedule, record, now, item.missed, item.grace)) is not None:
                due.append((item, record, tick))
        if not (new or due) or not self._fence():
            return
        for record in new:  # missed ticks count from here: a schedule never fires for the time before it existed
            self._attempt(record.name, functools.partial(self._write, record))
        for item, record, tick in due:
            self._attempt(item.name, functools.partial(self._fire, item, record, tick))

    def _fire(self, item: RecurringJob, record: FireRecord, tick: dt.datetime) -> None:
        job = self.enqueue(item, tick)
        self._write(FireRecord(item.name, record.since, tick, job.job_id, self.clock(), item.schedule.describe()))
        self.fired += 1
        logger.info("Recurring job %r fired for %s: job %s", item.name, tick.isoformat(), job.job_id)

    def _attempt(self, name: str, action: Callable[[], None]) -> None:
        """Run ``action`` for schedule ``name``; if Kafka refuses, log it and try again after RETRY_DELAY."""
        try:
            action()
        except EnqueueError as exc:
            self._retry_at[name] = self.clock() + RETRY_DELAY
            logger.error(
                "Recurring job %r: could not write to Kafka (%s); retrying in %ss (a tick whose job was enqueued "
                "but not recorded is enqueued again, with the same job id)",
                name,
                exc,
                RETRY_DELAY.total_seconds(),
            )
            return
        self._retry_at.pop(name, None)

    def _fence(self) -> bool:
        """Commit the position: only a current member of the group can, so a zombie stops here."""
        try:
            self._consumer.commit(offsets=[TopicPartition(self.topic, 0, self.position)], asynchronous=False)
        except KafkaException as exc:
            logger.warning("Recurring scheduler: not firing, the group membership is not confirmed (%s)", exc)
            return False
        return True

    def _write(self, record: FireRecord) -> None:
        """Record a fire (or a first sighting) in the schedule topic and wait for the acknowledgement."""
        get_producer().produce(
            [OutgoingMessage(self.topic, record.encode(), key=record.name.encode(), description=f"{record.name} fire")],
            sync=True,
        )
        self.records[record.name] = record

    # Rebalance callbacks (inside poll, on this thread: never during a fire) --------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if any(tp.topic == self.topic and tp.partition == 0 for tp in partitions):
            self.owner, self.loaded, self.records, self.position = True, False, {}, 0
            consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            logger.info("Recurring scheduler: assigned %s; reading the last fires", self.topic)

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        if self.owner:
            logger.info("Recurring scheduler: %s revoked; another process fires the schedules now", self.topic)
        self.owner = self.loaded = False

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self.owner = self.loaded = False


def _progress(record: FireRecord) -> dt.datetime:
    return record.last_tick or record.since
