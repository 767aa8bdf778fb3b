"""Replaying dead letters to their source topics, each once, recorded in the replay ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..conf import KafkaJobsSettings, get_settings
from ..exceptions import EnqueueError, ReplayRefused
from ..producer import OutgoingMessage, get_producer
from .ledger import Ledger, ReplayState, ledger_record
from .message import HEADER_PREFIX, REPLAYED_FROM, DeadLetter
from .reader import DEFAULT_READ_TIMEOUT, DeadLetterTopic

REPLAY_CHUNK = 200


# Replaying --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReplayResult:
    """What a replay did."""

    topic: str
    replayed: list[DeadLetter] = dataclasses.field(default_factory=list)
    passed_over: list[DeadLetter] = dataclasses.field(default_factory=list)  # stubs that --all went past


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
        _with_fresh_retries(letter.value or b""),
        key=letter.key,
        partition=partition,
        headers=headers,
        description=f"replay of {letter.where}"
        + (f" (job {letter.job_name} {letter.job_id})" if letter.job_id else ""),
    )


def _with_fresh_retries(value: bytes) -> bytes:
    """A replayed job gets its retries again: a job retried through the delay tiers counts its runs in the
    message (``executions``), so without this it would be dead-lettered again at its first failure."""
    from ..serializer import get_serializer

    reset = getattr(get_serializer(), "reset_executions", None)
    return reset(value) if reset is not None else value


def replay_dead_letters(
    topic: str,
    *,
    offsets: Iterable[tuple[int | None, int]] | None = None,
    force: bool = False,
    settings: KafkaJobsSettings | None = None,
    timeout: float = DEFAULT_READ_TIMEOUT,
) -> ReplayResult:
    """Produce DLQ messages back to their source topics and record them in the replay ledger.

    Args:
        offsets: ``(partition, offset)`` pairs to replay (partition ``None`` for a single-partition topic);
            only those are read and replayed. ``None`` replays every pending message (and passes over the
            pending stubs, which carry nothing to replay).
        force: replay selected messages even if they were replayed already.

    Raises:
        ReplayRefused: a selected message was replayed already (without ``force``), does not exist, is a stub
            or has no source topic; nothing was replayed.
        EnqueueError: producing failed part way; the ledger records what was acknowledged.
    """
    from ..topics import existing_topics

    settings = settings or get_settings()
    result = ReplayResult(topic)
    with DeadLetterTopic(topic, settings, timeout) as dlq:
        ledger = dlq.ledger()
        letters: list[DeadLetter] = []
        if offsets is None:
            for letter in dlq.letters(ledger.cursors(dlq.partitions), ledger=ledger):
                if letter.state is ReplayState.PENDING:
                    (result.passed_over if letter.stub is not None else letters).append(letter)
        else:
            wanted = _selection(topic, dlq.partitions, offsets, ledger, force)
            start = {p: min(chosen) for p, chosen in wanted.items()}
            stop = {p: max(chosen) + 1 for p, chosen in wanted.items()}
            letters = [d for d in dlq.letters(start, stop, ledger) if d.offset in wanted[d.partition]]
            found = {(d.partition, d.offset) for d in letters}
            missing = sorted((p, o) for p, chosen in wanted.items() for o in chosen if (p, o) not in found)
            if missing:
                raise ReplayRefused(
                    f"No message at {', '.join(f'{p}:{o}' for p, o in missing)} in {topic!r}; see "
                    "'manage.py kafkadlq list'. Nothing was replayed."
                )
        _refuse_unreplayable(letters)
        sizes = existing_topics(settings)
        gone = sorted({str(d.source_topic) for d in letters if d.source_topic not in sizes})
        if gone:
            raise ReplayRefused(f"Source topic(s) {', '.join(gone)} no longer exist. Nothing was replayed.")
        result.replayed = _produce(dlq, letters, result.passed_over, sizes, force)
    return result


def _refuse_unreplayable(letters: list[DeadLetter]) -> None:
    """Refuse to replay stubs (they carry no message) and messages not written by kafka_jobs."""
    stubs = [d.where for d in letters if d.stub is not None]
    if stubs:
        raise ReplayRefused(
            f"{', '.join(stubs)} are stubs: the message was too large to dead-letter (or refused for good; "
            f"{HEADER_PREFIX}stub says why), so there is nothing to replay. The original is in its source topic "
            f"at {HEADER_PREFIX}source-offset until retention removes it. Nothing was replayed."
        )
    foreign = [d.where for d in letters if d.source_topic is None]
    if foreign:
        raise ReplayRefused(
            f"{', '.join(foreign)} carry no {HEADER_PREFIX}source-topic header (not written by kafka_jobs), so "
            "their source is unknown. Select the others with --offsets. Nothing was replayed."
        )


def _produce(
    dlq: DeadLetterTopic,
    letters: list[DeadLetter],
    passed_over: list[DeadLetter],
    sizes: dict[str, int],
    force: bool,
) -> list[DeadLetter]:
    """Replay ``letters`` in chunks, then record in the ledger what was acknowledged and passed over.

    After a failed chunk the ledger still records the chunks acknowledged before it, then the error is raised.
    """
    replayed: list[DeadLetter] = []
    producer = get_producer()
    try:
        for index in range(0, len(letters), REPLAY_CHUNK):
            chunk = letters[index : index + REPLAY_CHUNK]
            try:
                producer.produce([replay_message(d, sizes[str(d.source_topic)]) for d in chunk], sync=True)
            except EnqueueError as exc:
                raise EnqueueError(
                    f"Replay of {dlq.topic!r} stopped at {chunk[0].where}: {exc}. {len(replayed)} message(s) "
                    "before it were replayed and recorded; messages of the failed batch may have been written "
                    "and would be replayed again by the next replay."
                ) from exc
            replayed.extend(chunk)
    finally:
        if replayed or passed_over:
            dlq.append_to_ledger(ledger_record(_by_partition(replayed), _by_partition(passed_over), forced=force))
    return replayed


def _by_partition(letters: list[DeadLetter]) -> dict[int, list[int]]:
    offsets: dict[int, list[int]] = {}
    for letter in letters:
        offsets.setdefault(letter.partition, []).append(letter.offset)
    return offsets


def _selection(
    topic: str,
    partitions: list[int],
    offsets: Iterable[tuple[int | None, int]],
    ledger: Ledger,
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
    replayed = sorted(
        (p, o) for p, chosen in wanted.items() for o in chosen if ledger.state(p, o) is ReplayState.REPLAYED
    )
    if replayed and not force:
        raise ReplayRefused(
            f"{', '.join(f'{p}:{o}' for p, o in replayed)} of {topic!r} were replayed already (see 'manage.py "
            "kafkadlq list'). Use --force to replay them again. Nothing was replayed."
        )
    return wanted
