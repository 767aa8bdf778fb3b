"""The DLQ copy of a failed message: original key, value and headers plus ``kj-dlq-*`` headers, and parsing it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import traceback
from collections.abc import Iterable
from typing import Any

from ..headers import ID_HEADER, JOB_HEADER
from ..producer import OutgoingMessage

HEADER_PREFIX = "kj-dlq-"
REPLAYED_FROM = "kj-replayed-from"
MAX_TRACEBACK = 4000
MAX_LINE = 500  # of one traceback line
MAX_EXCEPTION_MESSAGE = 2000


# Writing ----------------------------------------------------------------------------------------------


def _text(value: Any) -> bytes:
    return str(value).encode("utf-8", "replace")


def trimmed_traceback(exc: BaseException) -> str:
    """Return the traceback of ``exc`` (with its causes) in at most about ``MAX_TRACEBACK`` characters.

    Long lines (usually exception messages, which have a header of their own) are cut first, so the frames
    survive; then the innermost end is kept.
    """
    chunks = traceback.TracebackException.from_exception(exc).format()
    trace = "".join(c if len(c) <= MAX_LINE else c[:MAX_LINE] + "...\n" for c in chunks)
    if len(trace) > MAX_TRACEBACK:
        trace = "...\n" + trace[-MAX_TRACEBACK:]
    return trace


def dead_letter_message(
    message: Any, dlq_topic: str, *, group_id: str, attempts: int, exc: BaseException
) -> OutgoingMessage:
    """Build the DLQ copy of ``message`` (a confluent-kafka Message) for failure ``exc``."""
    trace = trimmed_traceback(exc)
    headers = [(k, v) for k, v in (message.headers() or []) if not k.startswith(HEADER_PREFIX)]
    headers += [
        (HEADER_PREFIX + "source-topic", _text(message.topic())),
        (HEADER_PREFIX + "source-partition", _text(message.partition())),
        (HEADER_PREFIX + "source-offset", _text(message.offset())),
        (HEADER_PREFIX + "consumer-group", _text(group_id)),
        (HEADER_PREFIX + "attempts", _text(attempts)),
        (HEADER_PREFIX + "exception-class", _text(f"{type(exc).__module__}.{type(exc).__qualname__}")),
        (HEADER_PREFIX + "exception-message", _text(str(exc))[:MAX_EXCEPTION_MESSAGE]),
        (HEADER_PREFIX + "traceback", _text(trace)),
        (HEADER_PREFIX + "failed-at", _text(dt.datetime.now(dt.UTC).isoformat())),
    ]
    return OutgoingMessage(
        dlq_topic,
        message.value() or b"",
        key=message.key(),
        headers=headers,
        description=f"dead letter of {message.topic()}/{message.partition()}@{message.offset()}",
    )


def dlq_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Return the ``kj-dlq-*`` headers of a DLQ message as text, without the prefix."""
    return {
        key[len(HEADER_PREFIX) :]: (value or b"").decode("utf-8", "replace")
        for key, value in headers or []
        if key.startswith(HEADER_PREFIX)
    }


# Reading ----------------------------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _job_identity(value: bytes | None, headers: dict[str, str]) -> tuple[str | None, str | None]:
    """Return (job name, job id) from the envelope if it decodes as JSON, else from the kj-job/kj-id headers."""
    name, job_id = headers.get(JOB_HEADER), headers.get(ID_HEADER)
    try:
        data = json.loads(value or b"")
    except (UnicodeDecodeError, ValueError):
        return name, job_id
    if isinstance(data, dict):
        if isinstance(data.get("job"), str):
            name = data["job"]
        if isinstance(data.get("id"), str):
            job_id = data["id"]
    return name, job_id


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One message of a DLQ topic, with its ``kj-dlq-*`` headers and the job it carries (best effort).

    Fields are ``None`` where the message does not say (a garbage payload has no job name or id; a message
    not written by kafka_jobs has no source).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    job_name: str | None
    job_id: str | None
    exception_class: str | None
    exception_message: str | None
    traceback: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    consumer_group: str | None
    attempts: int | None
    failed_at: str | None
    replayed: bool = False  # below the replay cursor: replayed, or passed over by an explicit replay

    @classmethod
    def from_message(cls, message: Any, cursor: int = 0) -> DeadLetter:
        """Describe a consumed DLQ message; ``cursor`` is its partition's replay cursor."""
        raw_headers = tuple((k, v or b"") for k, v in message.headers() or [])
        meta = dlq_headers(raw_headers)
        text_headers = {k: v.decode("utf-8", "replace") for k, v in raw_headers}
        job_name, job_id = _job_identity(message.value(), text_headers)
        return cls(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            value=message.value(),
            headers=raw_headers,
            job_name=job_name,
            job_id=job_id,
            exception_class=meta.get("exception-class"),
            exception_message=meta.get("exception-message"),
            traceback=meta.get("traceback"),
            source_topic=meta.get("source-topic"),
            source_partition=_int(meta.get("source-partition")),
            source_offset=_int(meta.get("source-offset")),
            consumer_group=meta.get("consumer-group"),
            attempts=_int(meta.get("attempts")),
            failed_at=meta.get("failed-at"),
            replayed=message.offset() < cursor,
        )

    @property
    def where(self) -> str:
        """``topic/partition@offset`` of this DLQ message."""
        return f"{self.topic}/{self.partition}@{self.offset}"

    @property
    def source(self) -> str | None:
        """``topic/partition@offset`` of the original message, if the headers say."""
        if self.source_topic is None:
            return None
        return f"{self.source_topic}/{self.source_partition}@{self.source_offset}"

    @property
    def error(self) -> str:
        """``ExceptionClass: message`` (or ``?``)."""
        if self.exception_class is None:
            return "?"
        return f"{self.exception_class}: {self.exception_message or ''}".rstrip(": ")
