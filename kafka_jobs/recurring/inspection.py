"""The recurring schedules with their last fire and next tick, for ``manage.py kafkascheduled``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from ..conf import KafkaJobsSettings
from ..delays.inspection import reader_config
from ..internal_topics import schedule_topic
from .declaration import RecurringJob
from .fires import FireRecord
from .scheduler import group_id

READ_TIMEOUT = 10.0


@dataclasses.dataclass
class ScheduleState:
    """A declared schedule: what it enqueues, when it ticks next, and its last fire (None: never fired)."""

    name: str
    job: str
    schedule: str
    missed: str
    next_tick: dt.datetime | None
    record: FireRecord | None

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-able values."""
        record = self.record
        return {
            "name": self.name,
            "job": self.job,
            "schedule": self.schedule,
            "missed": self.missed,
            "next_tick": self.next_tick.isoformat() if self.next_tick else None,
            "since": record.since.isoformat() if record else None,
            "last_tick": record.last_tick.isoformat() if record and record.last_tick else None,
            "last_job_id": record.job_id if record else None,
            "last_fired_at": record.fired_at.isoformat() if record and record.fired_at else None,
        }


def read_fire_records(settings: KafkaJobsSettings, timeout: float = READ_TIMEOUT) -> dict[str, FireRecord]:
    """Read the schedule topic to its end and return the last record of each schedule name."""
    consumer = Consumer({**reader_config(settings, f"{group_id(settings)}.inspect.{uuid.uuid4().hex[:8]}")})
    records: dict[str, FireRecord] = {}
    try:
        consumer.assign([TopicPartition(schedule_topic(settings), 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                continue
            record = FireRecord.decode(message.value())
            if record is not None:
                records[record.name] = record
    finally:
        consumer.close()
    return records


def schedule_states(
    settings: KafkaJobsSettings,
    recurring: tuple[RecurringJob, ...],
    now: dt.datetime | None = None,
    timeout: float = READ_TIMEOUT,
) -> list[ScheduleState]:
    """Return the state of every declared schedule; next ticks are those after ``now`` (default: once read)."""
    records = read_fire_records(settings, timeout) if recurring else {}
    now = now or dt.datetime.now(dt.UTC)
    return [
        ScheduleState(
            item.name,
            item.job_name,
            item.schedule.describe(),
            item.missed,
            item.schedule.next_after(now),
            records.get(item.name),
        )
        for item in recurring
    ]
