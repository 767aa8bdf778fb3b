"""Writing jobs to the outbox: whether a job goes there, to which database, and the row it becomes."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import DEFAULT_DB_ALIAS, connections

from ..conf import KafkaJobsSettings
from ..exceptions import InvalidJob
from ..producer import OutgoingMessage
from .models import OutboxMessage

if TYPE_CHECKING:
    from ..backends.base import Prepared
    from ..job import Job

# Rows are spread over this many lanes; one relay at a time produces a lane (in id order). More lanes let
# more relays work at once; the messages of one key always share one lane.
LANES = 256


def wants_outbox(job: Job, settings: KafkaJobsSettings) -> bool:
    """Whether ``job`` goes through the outbox: ``set(outbox=...)``, else ``kafka_options``, else ``OUTBOX``."""
    if job.outbox is not None:
        return job.outbox is not False
    if job.options.outbox is not None:
        return job.options.outbox
    return settings.outbox


def database_for(job: Job) -> str:
    """Return the database alias ``job``'s row is written to: the one named, or the one in a transaction.

    Outside any transaction the row goes to the default database (and is committed at once).
    """
    if isinstance(job.outbox, str):
        if job.outbox not in connections.settings:
            raise InvalidJob(
                f"{job!r}: set(outbox={job.outbox!r}) names no database in DATABASES "
                f"({', '.join(connections.settings)})."
            )
        return job.outbox
    open_on = [conn.alias for conn in connections.all(initialized_only=True) if conn.in_atomic_block]
    if not open_on:
        return DEFAULT_DB_ALIAS
    if len(open_on) > 1:
        raise InvalidJob(
            f"{job!r} goes through the outbox, and transactions are open on several databases "
            f"({', '.join(open_on)}): name the one to write it to with set(outbox='<alias>')."
        )
    return open_on[0]


def lane_of(message: OutgoingMessage, job_id: str) -> int:
    """Return the lane of a message: by topic and key, or topic and partition; a keyless one by its job id."""
    if message.key is not None:
        basis = b"k" + message.topic.encode() + b"\0" + message.key
    elif message.partition is not None:
        basis = b"p" + message.topic.encode() + b"\0" + str(message.partition).encode()
    else:
        basis = b"j" + job_id.encode()
    return zlib.crc32(basis) % LANES


def encode_headers(headers: Sequence[tuple[str, bytes]] | None) -> list[list[str]]:
    """Return headers as JSON-safe pairs (values in base64)."""
    return [[name, base64.b64encode(value).decode()] for name, value in headers or ()]


def decode_headers(stored: Sequence[Sequence[str]]) -> list[tuple[str, bytes]]:
    """Return the headers ``encode_headers`` stored."""
    return [(name, base64.b64decode(value)) for name, value in stored]


def row_for(prepared: Prepared) -> OutboxMessage:
    """Return the (unsaved) outbox row of a prepared job; its message must have been built."""
    message = prepared.message
    assert message is not None, "the Kafka backend builds the message in prepare()"
    job = prepared.job
    return OutboxMessage(
        lane=lane_of(message, job.job_id),
        job_id=job.job_id,
        job_name=job.job_name,
        topic=message.topic,
        key=message.key,
        partition=message.partition,
        headers=encode_headers(message.headers),
        value=message.value,
        scheduled_at=job.scheduled_at,
    )


def write(batch: Sequence[Prepared], alias: str) -> None:
    """Insert the rows of ``batch`` in its order (ids increase in that order) on database ``alias``."""
    rows = [row_for(prepared) for prepared in batch]
    if len(rows) == 1:
        rows[0].save(using=alias, force_insert=True)
    else:
        OutboxMessage.objects.using(alias).bulk_create(rows)


def message_of(row: OutboxMessage) -> OutgoingMessage:
    """Return the message a row holds (before any delay tier is chosen)."""
    return OutgoingMessage(
        row.topic,
        bytes(row.value),
        key=bytes(row.key) if row.key is not None else None,
        partition=row.partition,
        headers=decode_headers(row.headers),
        description=f"job {row.job_name} {row.job_id} (outbox row {row.id})",
    )
