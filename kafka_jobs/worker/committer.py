"""Offset commits: each partition's commit point goes to Kafka as soon as it moves, with its retry counts.

A worker killed with SIGKILL runs again only what it had not committed, so the poll thread commits on
every turn of its loop (at least every ``BUSY_POLL_TIMEOUT`` while jobs run) instead of on a timer. To keep
the cost small, at most one asynchronous commit is in flight: the points that move meanwhile go together
in the next one, sent as soon as the broker answers. Revocation and shutdown commit synchronously.

``COMMIT_INTERVAL`` (seconds, default 0) sets the least time between two asynchronous commits, for brokers
where commit requests are costly: points that move meanwhile go in the next commit. A worker killed with
SIGKILL then runs again at most that long's worth of finished jobs. Revocation and shutdown commit at once.

Retry counts. A job waiting to retry is counted in memory (``PartitionState.failures``); the count is also
written into the metadata of the committed offset (Kafka keeps a short string with each commit), and a
worker assigned the partition reads it back, so a restart during a backoff does not reset the count (and
``kj-dlq-attempts`` does not undercount). The limits, which the documentation states:

- The broker must keep commit metadata. Apache Kafka does (up to ``offset.metadata.max.bytes``, 4096
  by default); Tansu, the development broker, drops it, and there the count restarts from zero with the
  worker.
- A count is committed after the failure, on the next turn of the poll loop: a worker killed in between
  (SIGKILL) loses the last failure. A graceful stop (SIGTERM) commits it.
- Counts of at most ``MAX_METADATA`` characters are kept, lowest offsets first (a partition has one
  failing job unless it uses virtual partitions, where each lane may have one).
- The wait before the retry is not kept: after a restart the job runs again at once, with its count.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from .consumer import JobConsumer
from .ledger import Ledger
from .partition import CommitPoint, PartitionState

logger = logging.getLogger("kafka_jobs.worker")

METADATA_VERSION = 1
MAX_METADATA = 1000  # characters of commit metadata; Kafka refuses more than offset.metadata.max.bytes (4096)
COMMITTED_TIMEOUT = 10.0  # seconds to read the committed offsets (and retry counts) of assigned partitions
# librdkafka answers every async commit (with an error if need be); one unanswered this long is taken as lost.
UNANSWERED_COMMIT = 60.0


def encode_failures(failures: dict[int, int]) -> str | None:
    """Return the commit metadata that carries ``failures`` (offset -> failed runs), or None if empty."""
    items = sorted(failures.items())
    while items:
        text = json.dumps(
            {"kafka_jobs": METADATA_VERSION, "failures": {str(offset): count for offset, count in items}},
            separators=(",", ":"),
        )
        if len(text) <= MAX_METADATA:
            return text
        items = items[: len(items) // 2]
    return None


def decode_failures(metadata: str | None, offset: int) -> dict[int, int]:
    """Return the retry counts in commit ``metadata`` for jobs at or after ``offset``; {} for anything else."""
    if not metadata:
        return {}
    try:
        data = json.loads(metadata)
    except ValueError:
        return {}
    if not isinstance(data, dict) or data.get("kafka_jobs") != METADATA_VERSION:
        return {}  # not ours (another tool's metadata, or a format this release does not read)
    raw = data.get("failures")
    if not isinstance(raw, dict):
        return {}
    failures = {}
    for key, count in raw.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(count, int)) or isinstance(count, bool):
            continue
        if int(key) >= offset and count > 0:
            failures[int(key)] = count
    return failures


def _offset(state: PartitionState, point: CommitPoint) -> TopicPartition:
    metadata = encode_failures(point.failures) if point.failures else None
    if metadata is None:  # no metadata: a commit clears the counts of jobs that failed before
        return TopicPartition(state.topic, state.partition, point.offset)
    return TopicPartition(state.topic, state.partition, point.offset, metadata)


def _text(offsets: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}@{tp.offset}" for tp in offsets) or "none"


class Committer:
    """Sends commit points for the ledger's partitions; only the poll thread calls it."""

    def __init__(self, consumer: JobConsumer, ledger: Ledger, interval: float = 0.0) -> None:
        self.consumer = consumer
        self.ledger = ledger
        self.interval = interval  # least seconds between asynchronous commits (COMMIT_INTERVAL)
        self.last_sent: float | None = None  # monotonic time of the last asynchronous commit
        self.in_flight_since: float | None = None  # when the unanswered async commit was sent
        self.closing = False  # the consumer is being closed: send nothing from callbacks
        self.sent = 0  # commits sent (async and sync), for tests and statistics
        self.seen_completed = 0  # the ledger's count of completed jobs when commit points were last looked at

    def commit(self) -> None:
        """Send every commit point that moved, unless the previous asynchronous commit is still unanswered.

        With an ``interval``, also not before it has passed since the previous one.
        """
        now = time.monotonic()
        if self.in_flight_since is not None:
            waited = now - self.in_flight_since
            if waited < UNANSWERED_COMMIT:
                return
            logger.warning("No answer to the offset commit sent %.0fs ago; committing again", waited)
        if self.interval and self.last_sent is not None and now - self.last_sent < self.interval:
            return
        with self.ledger.cond:
            self.seen_completed = self.ledger.completed
            states = self.ledger.partitions.values()
            pending = [(state, point) for state in states if (point := state.commit_point()) is not None]
        if pending and self._send(pending, asynchronous=True):
            self.in_flight_since = self.last_sent = time.monotonic()

    def commit_sync(self, states: Iterable[PartitionState]) -> None:
        """Commit the current point of ``states`` and wait for the broker (revocation, shutdown).

        Every point is sent again, in case an earlier asynchronous commit failed.
        """
        with self.ledger.cond:
            pending = [(s, point) for s in states if not s.revoked and (point := s.current_point()) is not None]
        if pending:
            self._send(pending, asynchronous=False)

    def _send(self, pending: list[tuple[PartitionState, CommitPoint]], *, asynchronous: bool) -> bool:
        offsets = [_offset(state, point) for state, point in pending]
        results: list[TopicPartition] = []
        try:
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            else:
                results = self.consumer.commit(offsets=offsets, asynchronous=False) or []
        except KafkaException as exc:
            logger.error("Commit of %s failed: %s (jobs since the last commit may run again)", _text(offsets), exc)
            return False
        self.sent += 1
        with self.ledger.cond:
            for state, point in pending:
                state.sent = point
        self._failed([tp for tp in results if tp.error is not None], None)
        return True

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Take the broker's answer to an async commit (inside poll, on the poll thread); send what moved since."""
        self.in_flight_since = None
        if err is not None and err.code() == KafkaError._NO_OFFSET:
            return
        self._failed(partitions if err is not None else [tp for tp in partitions if tp.error is not None], err)
        if not self.closing:
            self.commit()

    def _failed(self, partitions: list[TopicPartition], err: KafkaError | None) -> None:
        """Log failed commits and mark their points unsent, so the next commit sends them again."""
        if not partitions:
            return
        for tp in partitions:
            error = err if err is not None else tp.error
            logger.error("Commit of %s/%d@%d failed: %s", tp.topic, tp.partition, tp.offset, error)
        with self.ledger.cond:
            for tp in partitions:
                state = self.ledger.partitions.get((tp.topic, tp.partition))
                if state is not None and state.sent is not None and state.sent.offset == tp.offset:
                    state.sent = None

    def restore(self, states: list[PartitionState]) -> None:
        """Read the retry counts committed with the offsets of newly assigned partitions (in ``on_assign``)."""
        if not states:
            return
        wanted = [TopicPartition(state.topic, state.partition) for state in states]
        try:
            committed = self.consumer.committed(wanted, timeout=COMMITTED_TIMEOUT)
        except KafkaException as exc:
            logger.warning(
                "Could not read the committed offsets of %s (%s): retry counts of failing jobs there start from zero",
                _text(wanted),
                exc,
            )
            return
        by_key = {(state.topic, state.partition): state for state in states}
        for tp in committed:
            state = by_key.get((tp.topic, tp.partition))
            failures = decode_failures(tp.metadata, tp.offset) if state is not None and tp.error is None else {}
            if state is None or not failures:
                continue
            with self.ledger.cond:
                state.failures.update(failures)
                state.sent = CommitPoint(tp.offset, failures)
            counts = ", ".join(f"@{offset}: {count}" for offset, count in sorted(failures.items()))
            logger.info("%s/%d: failed runs restored from the committed offset (%s)", tp.topic, tp.partition, counts)
