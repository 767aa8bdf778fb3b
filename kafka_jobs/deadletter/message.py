"""The DLQ copy of a failed message (original key, value and headers plus ``kj-dlq-*`` headers), its stub
when the copy can never be written, and parsing either back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from ..headers import ID_HEADER, JOB_HEADER
from ..producer import OutgoingMessage
from .ledger import ReplayState
from .text import MAX_NAME, class_name, cut, exception_message, trimmed_traceback, utf8

HEADER_PREFIX = "kj-dlq-"
REPLAYED_FROM = "kj-replayed-from"
# On a stub: why the copy could not be written, and how large it was (key, value and headers, in bytes).
STUB_HEADER = HEADER_PREFIX + "stub"
ORIGINAL_BYTES_HEADER = HEADER_PREFIX + "original-bytes"
MAX_STUB_REASON = 500  # characters


# Writing ----------------------------------------------------------------------------------------------


def _header(name: str, value: object) -> tuple[str, bytes]:
    return HEADER_PREFIX + name, utf8(cut(str(value), MAX_NAME))


def dead_letter_message(
    message: Any, dlq_topic: str, *, group_id: str, attempts: int, exc: BaseException
) -> OutgoingMessage:
    """Build the DLQ copy of ``message`` (a confluent-kafka Message) for failure ``exc``; never raises.

    Whatever the exception does when formatted, the copy is built (see ``text``); the ``kj-dlq-*``
    headers are valid UTF-8 and bounded (``DLQ_HEADER_BYTES``), so the copy is at most that much larger
    than the original.
    """
    headers = [(k, v) for k, v in (message.headers() or []) if not k.startswith(HEADER_PREFIX)]
    headers += [
        _header("source-topic", message.topic()),
        _header("source-partition", message.partition()),
        _header("source-offset", message.offset()),
        _header("consumer-group", group_id),
        _header("attempts", attempts),
        _header("exception-class", class_name(exc)),
        (HEADER_PREFIX + "exception-message", utf8(exception_message(exc))),
        (HEADER_PREFIX + "traceback", utf8(trimmed_traceback(exc))),
        _header("failed-at", dt.datetime.now(dt.UTC).isoformat()),
    ]
    return OutgoingMessage(
        dlq_topic,
        message.value() or b"",
        key=message.key(),
        headers=headers,
        description=f"dead letter of {message.topic()}/{message.partition()}@{message.offset()}",
    )


def message_bytes(message: OutgoingMessage) -> int:
    """Return the size of ``message``'s key, value and headers (names and values), in bytes."""
    headers = sum(len(k.encode("utf-8", "replace")) + len(v or b"") for k, v in message.headers or [])
    return len(message.key or b"") + len(message.value) + headers


def stub_of(copy: OutgoingMessage, reason: str) -> OutgoingMessage:
    """Return a stub of a DLQ copy that can never be written: its ``kj-dlq-*`` headers and the job's name
    and id, without the value, the key or the other headers, saying why (``kj-dlq-stub``).

    The original stays in its source topic (``kj-dlq-source-*``) until the topic's retention removes it.
    """
    identity = [
        (key, utf8(cut((value or b"").decode("utf-8", "replace"), MAX_NAME)))
        for key, value in copy.headers or []
        if key in (JOB_HEADER, ID_HEADER)
    ]
    kept = [(key, value) for key, value in copy.headers or [] if key.startswith(HEADER_PREFIX)]
    return OutgoingMessage(
        copy.topic,
        b"",
        headers=[
            *identity,
            *kept,
            (STUB_HEADER, utf8(cut(reason, MAX_STUB_REASON))),
            (ORIGINAL_BYTES_HEADER, str(message_bytes(copy)).encode()),
        ],
        description=f"stub {copy.description}",
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
    except (ValueError, RecursionError):  # garbage, or JSON nested too deeply to parse
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
    not written by kafka_jobs has no source). ``stub`` says why the value was left out, for a stub.
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
    stub: str | None = None
    original_bytes: int | None = None
    state: ReplayState = ReplayState.PENDING

    @classmethod
    def from_message(cls, message: Any, state: ReplayState = ReplayState.PENDING) -> DeadLetter:
        """Describe a consumed DLQ message; ``state`` is what the replay ledger says about it."""
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
            stub=meta.get(STUB_HEADER[len(HEADER_PREFIX) :]),
            original_bytes=_int(meta.get(ORIGINAL_BYTES_HEADER[len(HEADER_PREFIX) :])),
            state=state,
        )

    @property
    def replayed(self) -> bool:
        """True if this message was replayed (passed-over messages were not)."""
        return self.state is ReplayState.REPLAYED

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
