"""``JOB_BACKEND = "kafka"``: produce each job as a message to its queue's topic."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

from django.core import checks

from .. import registry
from ..conf import get_settings
from ..delays.messages import delayed_until
from ..exceptions import ConfigurationError, InvalidJob
from ..headers import job_headers
from ..job import Job
from ..ops.tracing import producer_headers
from ..producer import OutgoingMessage, close_producer, get_producer
from ..routing import get_routes
from .base import BaseBackend, Prepared

SYNC_METHODS = ("produce_sync", "produce_many_sync")


def _key_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _partition_number(job: Job, value: Any) -> int:
    try:
        partition = int(value)
    except (TypeError, ValueError):
        partition = -1
    if partition < 0:
        raise InvalidJob(
            f"{job!r}: partition_key_type is 'partition', so the partitioner must return a partition number "
            f">= 0; it returned {value!r}."
        )
    return partition


def topic_for(job: Job) -> str:
    """Return the topic ``job`` goes to; raise ``UnroutedQueue`` if its queue must be routed and is not."""
    return get_routes().topic_for(job.queue_name, require_route=get_settings().require_route)


def build_message(job: Job, payload: bytes) -> OutgoingMessage:
    """Return the Kafka message for an encoded job: topic, key or partition, headers."""
    key = None
    partition = job.partition
    partition_value = job.partition_key
    partitioner = job.options.partitioner
    if partition_value is None and partitioner is not None:
        partition_value = partitioner(job)
    if partition_value is not None:
        if job.options.partition_key_type == "partition" and partition is None:
            partition = _partition_number(job, partition_value)
        else:
            key = _key_bytes(partition_value)
    topic = topic_for(job)
    headers = job_headers(job)
    headers += producer_headers(topic, job.job_name, job.job_id, key, partition)
    return OutgoingMessage(topic, payload, key, partition, headers, f"job {job.job_name} {job.job_id}")


class KafkaBackend(BaseBackend):
    """Dispatch to Kafka with the job class's ``dispatch_method`` / ``dispatch_many_method``."""

    supports_defer = True  # a scheduled job waits in the delay tiers until it is due

    def __init__(self, alias: str) -> None:
        super().__init__(alias)
        from ..outbox import store  # its models need the app registry, ready once a backend is built

        self._outbox = store

    def validate_job(self, job: Job) -> None:
        """Also refuse a job whose queue is not routed, so a typo in ``queue_as`` fails here, not in a stray topic."""
        super().validate_job(job)
        topic_for(job)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """kafka_jobs.W001: a job's queue is not routed (E002, routes that do not load, is ``check_routes``'s)."""
        settings = get_settings()
        try:
            routes = get_routes()
        except ConfigurationError:
            return []
        if not settings.require_route:
            return []
        return [
            checks.Warning(
                f"Job {name} uses queue {job_class.queue_as!r}, which is not routed: enqueueing it fails.",
                hint=f"Add active_job_topic({job_class.queue_as!r}) to routes in {settings.routes}.",
                obj=job_class,
                id="kafka_jobs.W001",
            )
            for name, job_class in sorted(registry.all_jobs().items())
            if job_class.check_queue and job_class.queue_as not in routes.by_queue
        ]

    def prepare(self, job: Job, now: dt.datetime) -> Prepared:
        """Validate and encode ``job``, and build its message (the partitioner runs here, at enqueue)."""
        prepared = super().prepare(job, now)
        prepared.message = build_message(job, prepared.payload)
        return prepared

    def outbox_database(self, job: Job) -> str | None:
        """The database of the job's outbox row if it goes through the outbox (``kafka_jobs.outbox.store``)."""
        store = self._outbox
        return store.database_for(job) if store.wants_outbox(job, get_settings()) else None

    def dispatch(self, prepared: Prepared) -> None:
        """Produce one job, waiting for the acknowledgement if the job's dispatch method is sync."""
        sync = prepared.job.options.dispatch_method in SYNC_METHODS
        get_producer().produce([_message(prepared)], sync=sync)

    def dispatch_many(self, batch: Sequence[Prepared]) -> None:
        """Produce a batch in its order; each run of ``produce_many_sync`` jobs waits for its acknowledgements.

        Messages are handed to the producer in batch order, so on one partition they keep it. If a sync
        run fails (``EnqueueError``), the jobs before it have been handed over and those after it are not.
        """
        producer = get_producer()
        for sync, run in itertools.groupby(batch, key=lambda p: p.job.options.dispatch_many_method in SYNC_METHODS):
            producer.produce([_message(prepared) for prepared in run], sync=sync)

    def close(self) -> None:
        """Flush and drop the producer."""
        close_producer()


def _message(prepared: Prepared) -> OutgoingMessage:
    if prepared.message is None:  # prepared by another backend's prepare(): build it now
        prepared.message = build_message(prepared.job, prepared.payload)
    due = prepared.job.scheduled_at
    if due is None:  # most jobs: checked here, as it runs for every message
        return prepared.message
    # A job due later waits in a delay tier, never in its queue. Chosen when sent: a job dispatched at the
    # commit of a transaction may be due by then.
    return delayed_until(prepared.message, due, get_settings())
