"""``JOB_BACKEND = "kafka"``: produce each job as a message to its queue's topic."""

from __future__ import annotations

from ..conf import get_settings
from ..job import Job
from ..producer import OutgoingMessage, close_producer, get_producer
from ..routing import get_routes
from .base import BaseBackend

SYNC_METHODS = ("produce_sync", "produce_many_sync")


def _key_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def build_message(job: Job, payload: bytes) -> OutgoingMessage:
    """Return the Kafka message for an encoded job: topic, key or partition, headers."""
    settings = get_settings()
    topic = get_routes().topic_for(job.queue_name, require_route=settings.require_route)
    key = None
    partition = job.partition
    partition_value = job.partition_key
    partitioner = job.options.partitioner
    if partition_value is None and partitioner is not None:
        partition_value = partitioner(job)
    if partition_value is not None:
        if job.options.partition_key_type == "partition" and partition is None:
            partition = int(partition_value)
        else:
            key = _key_bytes(partition_value)
    headers = [("kj-job", job.job_name.encode()), ("kj-id", job.job_id.encode())]
    return OutgoingMessage(
        topic,
        payload,
        key=key,
        partition=partition,
        headers=headers,
        description=f"job {job.job_name} {job.job_id}",
    )


class KafkaBackend(BaseBackend):
    """Dispatch to Kafka with the job class's ``dispatch_method`` / ``dispatch_many_method``."""

    name = "kafka"

    def encode(self, job: Job) -> bytes:
        # Check the route before encoding, so a typo in queue_as fails at enqueue, not in a stray topic.
        get_routes().topic_for(job.queue_name, require_route=get_settings().require_route)
        return super().encode(job)

    def dispatch(self, job: Job, payload: bytes) -> None:
        """Produce one job, waiting for the acknowledgement if the job's dispatch method is sync."""
        get_producer().produce([build_message(job, payload)], sync=job.options.dispatch_method in SYNC_METHODS)

    def dispatch_many(self, jobs: list[Job], payloads: list[bytes]) -> None:
        """Produce a batch; the sync jobs in it wait for their acknowledgements."""
        sync_batch: list[OutgoingMessage] = []
        async_batch: list[OutgoingMessage] = []
        for job, payload in zip(jobs, payloads, strict=True):
            batch = sync_batch if job.options.dispatch_many_method in SYNC_METHODS else async_batch
            batch.append(build_message(job, payload))
        producer = get_producer()
        if async_batch:
            producer.produce(async_batch, sync=False)
        if sync_batch:
            producer.produce(sync_batch, sync=True)

    def close(self) -> None:
        """Flush and drop the producer."""
        close_producer()
