"""The dead letter queue: the DLQ copy of a failed message, and the tools to read and replay a DLQ topic.

A DLQ message keeps the original key and value (byte for byte) and original headers, and adds
``kj-dlq-*`` headers saying where it came from and why it failed. Replay produces it back to its source
topic without those headers and with ``kj-replayed-from: <dlq topic>/<partition>/<offset>``.

Replaying each message once: the consumer group ``<GROUP_ID>.dlq-replay`` keeps one committed offset per
DLQ partition, the *replay cursor*. Everything below the cursor has been dealt with (replayed, or passed
over by an explicit selection); everything at or above it is pending.

- ``replay --all`` replays every pending message and moves the cursor to the end of the partition, so a
  second ``--all`` replays nothing.
- ``replay --offsets 3 7`` replays those messages and moves the cursor past the highest one; pending
  messages in between that were not selected are passed over (reported, and left out of later ``--all``).
  An offset below the cursor is refused unless ``force`` is given.

This needs nothing from the broker beyond committed offsets (commit metadata, which Tansu drops, is not
used). The cursor is committed after the replayed messages are acknowledged, so a crash in between may
replay them again (at least once, never lost). Two replays running at the same time are not coordinated.
Reading a DLQ assigns its partitions directly (no group membership, no commit), so it disturbs neither
the worker's group nor the replay cursor.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .conf import KafkaJobsSettings, client_config, get_settings
from .exceptions import BrokerUnavailable, ConfigurationError, EnqueueError, ReplayRefused
from .producer import OutgoingMessage, get_producer

HEADER_PREFIX = "kj-dlq-"
REPLAYED_FROM = "kj-replayed-from"
JOB_HEADER = "kj-job"
ID_HEADER = "kj-id"
MAX_TRACEBACK = 4000
MAX_LINE = 500  # of one traceback line
MAX_EXCEPTION_MESSAGE = 2000
REPLAY_GROUP_SUFFIX = ".dlq-replay"
DEFAULT_READ_TIMEOUT = 30.0
REPLAY_CHUNK = 200


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


def replay_group(settings: KafkaJobsSettings) -> str:
    """Return the consumer group that holds the replay cursors (never the worker's group)."""
    return settings.group_id + REPLAY_GROUP_SUFFIX


class DeadLetterTopic:
    """A DLQ topic opened for reading and replaying; use as a context manager (closes its consumer)."""

    def __init__(
        self, topic: str, settings: KafkaJobsSettings | None = None, timeout: float = DEFAULT_READ_TIMEOUT
    ) -> None:
        from .topics import existing_topics

        self.topic = topic
        self.settings = settings or get_settings()
        self.timeout = timeout
        partitions = existing_topics(self.settings).get(topic)
        if partitions is None:
            raise ConfigurationError(
                f"The dead letter topic {topic!r} does not exist. It is created with the routed topics "
                "('manage.py kafkatopics create') and filled by the worker."
            )
        self.partitions = list(range(partitions))
        self.consumer = Consumer(
            {
                **self.settings.consumer,
                **client_config(self.settings),
                "client.id": self.settings.client_id + "-dlq",
                "group.id": replay_group(self.settings),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

    def __enter__(self) -> DeadLetterTopic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the consumer (it never joined a group, so nothing is rebalanced)."""
        self.consumer.close()

    def cursors(self) -> dict[int, int]:
        """Return the replay cursor of each partition (0 if nothing was replayed yet)."""
        wanted = [TopicPartition(self.topic, p) for p in self.partitions]
        try:
            committed = self.consumer.committed(wanted, timeout=self.timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"Could not read the replay cursors of {self.topic!r} (group {replay_group(self.settings)!r}): {exc}"
            ) from exc
        return {tp.partition: max(tp.offset, 0) for tp in committed}

    def read(self, start: dict[int, int]) -> Iterator[Any]:
        """Yield the messages of the partitions in ``start`` from those offsets to the end of each.

        The end is where the consumer reports end-of-partition (not the high watermark from ListOffsets,
        which some brokers get wrong).
        """
        if not start:
            return
        self.consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in start.items()])
        pending = set(start)
        deadline = time.monotonic() + self.timeout
        last_error = ""
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    detail = f"; last error: {last_error}" if last_error else ""
                    raise BrokerUnavailable(
                        f"Did not reach the end of the dead letter topic {self.topic!r} within {self.timeout:.0f}s "
                        f"(partitions {sorted(pending)} still being read{detail}). Is the broker reachable?"
                    )
                message = self.consumer.poll(min(left, 1.0))
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                    elif error.fatal():
                        raise BrokerUnavailable(f"Reading the dead letter topic {self.topic!r} failed: {error.str()}")
                    else:  # the client retries by itself (e.g. a lost connection); the deadline bounds it
                        last_error = error.str()
                    continue
                if message.partition() in pending:
                    yield message
        finally:
            self.consumer.unassign()

    def commit_cursors(self, cursors: dict[int, int]) -> None:
        """Record new replay cursors for the replay group."""
        if not cursors:
            return
        offsets = [TopicPartition(self.topic, p, offset) for p, offset in cursors.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"The messages were replayed, but the replay cursor of {self.topic!r} could not be saved ({exc}): "
                "a later replay would replay them again."
            ) from exc


def read_dead_letters(
    topic: str,
    *,
    limit: int | None = None,
    settings: KafkaJobsSettings | None = None,
    timeout: float = DEFAULT_READ_TIMEOUT,
) -> list[DeadLetter]:
    """Return the messages of DLQ ``topic`` in offset order (the ``limit`` most recent if given).

    Raises:
        ConfigurationError: the topic does not exist.
        BrokerUnavailable: the broker could not be read within ``timeout``.
    """
    with DeadLetterTopic(topic, settings, timeout) as dlq:
        cursors = dlq.cursors()
        kept: dict[int, collections.deque[DeadLetter]] = {p: collections.deque(maxlen=limit) for p in dlq.partitions}
        for message in dlq.read(dict.fromkeys(dlq.partitions, 0)):
            kept[message.partition()].append(DeadLetter.from_message(message, cursors.get(message.partition(), 0)))
    letters = [letter for partition in kept.values() for letter in partition]
    if limit is not None and len(letters) > limit:
        letters.sort(key=lambda d: (d.failed_at or "", d.partition, d.offset))
        letters = letters[-limit:]
    return sorted(letters, key=lambda d: (d.partition, d.offset))


# Replaying --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReplayResult:
    """What a replay did."""

    topic: str
    replayed: list[DeadLetter] = dataclasses.field(default_factory=list)
    passed_over: list[DeadLetter] = dataclasses.field(default_factory=list)  # pending, not selected, now done
    cursors: dict[int, int] = dataclasses.field(default_factory=dict)  # new replay cursors


def parse_offset(text: str) -> tuple[int | None, int]:
    """Parse ``OFFSET`` or ``PARTITION:OFFSET`` (both >= 0); raise ``ValueError`` otherwise."""
    partition, _, offset = text.rpartition(":")
    number = int(offset)
    part = int(partition) if partition else None
    if number < 0 or (part is not None and part < 0):
        raise ValueError(f"{text!r}: offsets and partitions are >= 0")
    return part, number


def replay_message(letter: DeadLetter, source_partitions: int) -> OutgoingMessage:
    """Return the message that puts ``letter`` back on its source topic."""
    assert letter.source_topic is not None
    headers = [(k, v) for k, v in letter.headers if not k.startswith(HEADER_PREFIX) and k != REPLAYED_FROM]
    headers.append((REPLAYED_FROM, f"{letter.topic}/{letter.partition}/{letter.offset}".encode()))
    # A keyed message goes where its key hashes today (with the jobs enqueued since); a keyless one back to
    # the partition it came from, which may have been chosen explicitly.
    partition = None
    if letter.key is None and letter.source_partition is not None and letter.source_partition < source_partitions:
        partition = letter.source_partition
    return OutgoingMessage(
        letter.source_topic,
        letter.value or b"",
        key=letter.key,
        partition=partition,
        headers=headers,
        description=f"replay of {letter.where}"
        + (f" (job {letter.job_name} {letter.job_id})" if letter.job_id else ""),
    )


def replay_dead_letters(
    topic: str,
    *,
    offsets: Iterable[tuple[int | None, int]] | None = None,
    force: bool = False,
    settings: KafkaJobsSettings | None = None,
    timeout: float = DEFAULT_READ_TIMEOUT,
) -> ReplayResult:
    """Produce DLQ messages back to their source topics and advance the replay cursor.

    Args:
        offsets: ``(partition, offset)`` pairs to replay (partition ``None`` for a single-partition topic);
            ``None`` replays every pending message.
        force: replay selected offsets even if they are below the replay cursor (already replayed).

    Raises:
        ReplayRefused: a selected offset is below the cursor (without ``force``), does not exist, or has no
            source topic; nothing was replayed.
        EnqueueError: producing failed part way; the cursor covers what was acknowledged.
    """
    from .topics import existing_topics

    settings = settings or get_settings()
    result = ReplayResult(topic)
    with DeadLetterTopic(topic, settings, timeout) as dlq:
        cursors = dlq.cursors()
        if offsets is None:
            letters = [DeadLetter.from_message(m, 0) for m in dlq.read(cursors)]
            wanted: dict[int, set[int]] | None = None
        else:
            wanted = _selection(topic, dlq.partitions, offsets, cursors, force)
            start = {p: min(*chosen, cursors[p]) for p, chosen in wanted.items()}
            letters = []
            for message in dlq.read(start):
                offset, partition = message.offset(), message.partition()
                if offset in wanted[partition]:
                    letters.append(DeadLetter.from_message(message, cursors[partition]))
                elif cursors[partition] <= offset < max(wanted[partition]):
                    result.passed_over.append(DeadLetter.from_message(message, cursors[partition]))
            found = {(d.partition, d.offset) for d in letters}
            missing = sorted((p, o) for p, chosen in wanted.items() for o in chosen if (p, o) not in found)
            if missing:
                raise ReplayRefused(
                    f"No message at {', '.join(f'{p}:{o}' for p, o in missing)} in {topic!r}; see "
                    "'manage.py kafkadlq list'. Nothing was replayed."
                )
        foreign = [d.where for d in letters if d.source_topic is None]
        if foreign:
            raise ReplayRefused(
                f"{', '.join(foreign)} carry no {HEADER_PREFIX}source-topic header (not written by kafka_jobs), so "
                "their source is unknown. Select the others with --offsets. Nothing was replayed."
            )
        source_sizes = existing_topics(settings)
        gone = sorted({str(d.source_topic) for d in letters if d.source_topic not in source_sizes})
        if gone:
            raise ReplayRefused(f"Source topic(s) {', '.join(gone)} no longer exist. Nothing was replayed.")
        new_cursors: dict[int, int] = {}
        producer = get_producer()
        for index in range(0, len(letters), REPLAY_CHUNK):
            chunk = letters[index : index + REPLAY_CHUNK]
            batch = [replay_message(d, source_sizes[str(d.source_topic)]) for d in chunk]
            try:
                producer.produce(batch, sync=True)
            except EnqueueError as exc:
                dlq.commit_cursors(new_cursors)
                raise EnqueueError(
                    f"Replay of {topic!r} stopped at {chunk[0].where}: {exc}. {len(result.replayed)} message(s) "
                    "before it were replayed and recorded; messages of the failed batch may have been written "
                    "and would be replayed again by the next replay."
                ) from exc
            for letter in chunk:
                result.replayed.append(letter)
                new_cursors[letter.partition] = max(
                    new_cursors.get(letter.partition, cursors[letter.partition]), letter.offset + 1
                )
        dlq.commit_cursors(new_cursors)
        result.cursors = {**cursors, **new_cursors}
    return result


def _selection(
    topic: str,
    partitions: list[int],
    offsets: Iterable[tuple[int | None, int]],
    cursors: dict[int, int],
    force: bool,
) -> dict[int, set[int]]:
    wanted: dict[int, set[int]] = {}
    for named, offset in offsets:
        if named is None and len(partitions) != 1:
            raise ReplayRefused(
                f"{topic!r} has {len(partitions)} partitions: name messages as PARTITION:OFFSET (e.g. 0:{offset})."
            )
        partition = partitions[0] if named is None else named
        if partition not in partitions:
            raise ReplayRefused(f"{topic!r} has no partition {partition} (it has {len(partitions)}).")
        wanted.setdefault(partition, set()).add(offset)
    if not wanted:
        raise ReplayRefused("No offsets selected: name the messages to replay, or replay them all.")
    below = sorted((p, o) for p, chosen in wanted.items() for o in chosen if o < cursors[p])
    if below and not force:
        raise ReplayRefused(
            f"{', '.join(f'{p}:{o}' for p, o in below)} of {topic!r} are below the replay cursor "
            f"({', '.join(f'{p}:{cursors[p]}' for p in sorted({p for p, _ in below}))}): they were replayed "
            "already, or passed over by an earlier replay. Use --force to replay them again. Nothing was replayed."
        )
    return wanted
