"""Replaying dead letters to their source topics, each once, behind the replay cursor."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..conf import KafkaJobsSettings, get_settings
from ..exceptions import EnqueueError, ReplayRefused
from ..producer import OutgoingMessage, get_producer
from .message import HEADER_PREFIX, REPLAYED_FROM, DeadLetter
from .reader import DEFAULT_READ_TIMEOUT, DeadLetterTopic

REPLAY_CHUNK = 200


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
    from ..topics import existing_topics

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
