"""A fake consumer (and its cluster) and a scripted executor, to run the real ``Worker`` inside unit tests.

``FakeConsumer`` behaves like librdkafka where the worker depends on it: rebalance callbacks and async
commit answers are served inside ``poll`` on the calling thread; each assigned partition is read from its
position (the committed offset, else the start), paused partitions return nothing, ``seek`` moves the
position, reaching the end of a partition gives one ``_PARTITION_EOF`` event, and ``close`` revokes what
is still assigned. The test drives the group: ``assign``, ``revoke`` and ``lose`` take effect at the next
``poll``; ``hold_commits`` keeps async commit answers back until ``release_commits``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from kafka_jobs.conf import KafkaJobsSettings
from kafka_jobs.routing import Route
from kafka_jobs.serializer import Envelope
from kafka_jobs.worker import Shutdown, Worker
from kafka_jobs.worker.executor import Outcome, Verdict

TP = tuple[str, int]


class FakeError:
    """The error of a consumer event (only ``_PARTITION_EOF`` is produced here)."""

    def __init__(self, code: int) -> None:
        self._code = code

    def code(self) -> int:
        return self._code

    def fatal(self) -> bool:
        return False

    def str(self) -> str:
        return f"fake error {self._code}"


class FakeMessage:
    """A fetched message (or an event, when ``error`` is set)."""

    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None, error: Any = None) -> None:
        self._topic, self._partition, self._offset, self._value, self._error = topic, partition, offset, value, error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return None

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def error(self) -> Any:
        return self._error

    def __repr__(self) -> str:
        return f"FakeMessage({self._topic}/{self._partition}@{self._offset}, {self._value!r})"


class FakeCluster:
    """The partition logs and the group's committed offsets, shared by the fake consumers of one test."""

    def __init__(self, *, keeps_commit_metadata: bool = True) -> None:
        self.cond = threading.Condition()
        self.logs: dict[TP, list[bytes]] = collections.defaultdict(list)
        self.committed: dict[TP, tuple[int, str | None]] = {}
        self.keeps_commit_metadata = keeps_commit_metadata  # Apache Kafka does; Tansu does not
        # Offsets a fetch jumps over: (offsets, fetches left that skip them; None: always, a real gap).
        self.skips: dict[TP, tuple[range, int | None]] = {}

    def produce(self, topic: str, partition: int, *values: bytes) -> None:
        """Append ``values`` to a partition's log."""
        with self.cond:
            self.logs[(topic, partition)].extend(values)
            self.cond.notify_all()

    def skip(self, topic: str, partition: int, offsets: range, times: int | None = 1) -> None:
        """Make the next ``times`` fetches reaching ``offsets`` jump over them (``None``: every fetch).

        Once: a broker handing out a later batch before an earlier one is readable (the embedded Tansu,
        under concurrent producers). Always: a real gap, such as transaction markers.
        """
        with self.cond:
            self.skips[(topic, partition)] = (offsets, times)

    def offset(self, topic: str, partition: int) -> int:
        """Return the group's committed offset of a partition, or -1001 (none)."""
        with self.cond:
            return self.committed.get((topic, partition), (-1001, None))[0]

    def metadata(self, topic: str, partition: int) -> str | None:
        """Return the metadata committed with a partition's offset."""
        with self.cond:
            return self.committed.get((topic, partition), (-1001, None))[1]


class FakeConsumer:
    """Implements ``kafka_jobs.worker.consumer.JobConsumer`` over a ``FakeCluster``."""

    def __init__(self, cluster: FakeCluster, on_commit: Callable[[Any, list[TopicPartition]], None]) -> None:
        self.cluster = cluster
        self.cond = cluster.cond
        self.on_commit = on_commit
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.topics: list[str] = []
        self.positions: dict[TP, int] = {}
        self.paused: set[TP] = set()
        self.at_eof: set[TP] = set()
        self.events: collections.deque[tuple[str, list[TP]]] = collections.deque()
        self.answers: collections.deque[tuple[Any, list[TopicPartition]]] = collections.deque()
        self.hold_commits = False
        self.fail_commits = 0  # answer the next N async commits with an error
        self.commits: list[tuple[bool, list[tuple[str, int, int, str | None]]]] = []  # (async?, offsets)
        self.pauses: list[tuple[str, TP]] = []  # ("pause" | "resume" | "seek@N", tp), in order
        self.closed = False
        self.polls = 0
        self._turn = 0

    # Driven by the test ------------------------------------------------------------------------------------

    def assign(self, *partitions: TP) -> None:
        """Assign ``partitions`` at the next poll (all partitions of the subscribed topics if none given)."""
        with self.cond:
            self.events.append(("assign", list(partitions)))
            self.cond.notify_all()

    def revoke(self, *partitions: TP) -> None:
        """Revoke ``partitions`` at the next poll."""
        with self.cond:
            self.events.append(("revoke", list(partitions)))
            self.cond.notify_all()

    def lose(self, *partitions: TP) -> None:
        """Report ``partitions`` lost at the next poll."""
        with self.cond:
            self.events.append(("lose", list(partitions)))
            self.cond.notify_all()

    def release_commits(self) -> None:
        """Let the held async commit answers through at the next poll."""
        with self.cond:
            self.hold_commits = False
            self.cond.notify_all()

    def async_commits(self) -> list[list[tuple[str, int, int, str | None]]]:
        """Return the offsets of each async commit sent so far."""
        with self.cond:
            return [offsets for asynchronous, offsets in self.commits if asynchronous]

    # The consumer ------------------------------------------------------------------------------------------

    def subscribe(self, topics: list[str], on_assign: Any = None, on_revoke: Any = None, on_lost: Any = None) -> None:
        self._check_open()
        self.topics = list(topics)
        self.callbacks = {"assign": on_assign, "revoke": on_revoke, "lose": on_lost}

    def poll(self, timeout: float = -1) -> FakeMessage | None:
        self._check_open()
        self.polls += 1
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            self._serve(events=True)
            with self.cond:
                found = self._take(1)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if not self.events and not (self.answers and not self.hold_commits):
                    self.cond.wait(left)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        self._check_open()
        self._serve(events=False)
        with self.cond:
            return self._take(num_messages)

    def pause(self, partitions: list[TopicPartition]) -> None:
        with self.cond:
            for tp in partitions:
                self.paused.add((tp.topic, tp.partition))
                self.pauses.append(("pause", (tp.topic, tp.partition)))

    def resume(self, partitions: list[TopicPartition]) -> None:
        with self.cond:
            for tp in partitions:
                self.paused.discard((tp.topic, tp.partition))
                self.pauses.append(("resume", (tp.topic, tp.partition)))
            self.cond.notify_all()

    def seek(self, partition: TopicPartition) -> None:
        key = (partition.topic, partition.partition)
        with self.cond:
            self.positions[key] = partition.offset
            self.at_eof.discard(key)
            self.pauses.append((f"seek@{partition.offset}", key))

    def assignment(self) -> list[TopicPartition]:
        with self.cond:
            return [TopicPartition(topic, partition) for topic, partition in self.positions]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool = True) -> Any:
        self._check_open()
        with self.cond:
            record = [(tp.topic, tp.partition, tp.offset, tp.metadata) for tp in offsets]
            self.commits.append((asynchronous, record))
            error = None
            if asynchronous and self.fail_commits:
                self.fail_commits -= 1
                error = KafkaError(KafkaError.REBALANCE_IN_PROGRESS)
            else:
                for topic, partition, offset, metadata in record:
                    kept = metadata if self.cluster.keeps_commit_metadata else None
                    self.cluster.committed[(topic, partition)] = (offset, kept)
            if asynchronous:
                self.answers.append((error, [TopicPartition(t, p, o) for t, p, o, _ in record]))
                self.cond.notify_all()
                return None
            return [TopicPartition(t, p, o) for t, p, o, _ in record]

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        self._check_open()
        result = []
        with self.cond:
            for tp in partitions:
                offset, metadata = self.cluster.committed.get((tp.topic, tp.partition), (-1001, None))
                if metadata is None:
                    result.append(TopicPartition(tp.topic, tp.partition, offset))
                else:
                    result.append(TopicPartition(tp.topic, tp.partition, offset, metadata))
        return result

    def close(self) -> None:
        self._check_open()
        with self.cond:
            assigned = list(self.positions)
        if assigned and self.callbacks.get("revoke"):
            self.callbacks["revoke"](self, [TopicPartition(t, p) for t, p in assigned])
        with self.cond:
            self.positions.clear()
            self.closed = True

    # Internals ---------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")

    def _serve(self, *, events: bool) -> None:
        """Run pending rebalance callbacks (poll only) and commit answers, outside the lock, as librdkafka does."""
        while True:
            with self.cond:
                if self.answers and not self.hold_commits:
                    answer: tuple[str, Any] = ("commit", self.answers.popleft())
                elif events and self.events:
                    answer = ("event", self.events.popleft())
                else:
                    return
            kind, payload = answer
            if kind == "commit":
                self.on_commit(*payload)
            else:
                self._rebalance(*payload)

    def _rebalance(self, kind: str, partitions: list[TP]) -> None:
        if kind == "assign" and not partitions:
            with self.cond:
                partitions = sorted(key for key in self.cluster.logs if key[0] in self.topics)
        callback = self.callbacks.get(kind)
        if callback is not None:
            callback(self, [TopicPartition(t, p) for t, p in partitions])
        with self.cond:
            for key in partitions:
                if kind == "assign":
                    offset = self.cluster.committed.get(key, (-1001, None))[0]
                    self.positions[key] = max(offset, 0)
                else:
                    self.positions.pop(key, None)
                self.at_eof.discard(key)
                self.paused.discard(key)

    def _take(self, limit: int) -> list[FakeMessage]:
        """Return up to ``limit`` messages (or EOF events) from unpaused partitions, round robin (under cond)."""
        keys = [key for key in self.positions if key not in self.paused]
        taken: list[FakeMessage] = []
        progress = True
        while len(taken) < limit and keys and progress:
            progress = False
            for i in range(len(keys)):
                key = keys[(self._turn + i) % len(keys)]
                log, position = self.cluster.logs.get(key, []), self.positions[key]
                skip = self.cluster.skips.get(key)
                if skip is not None and position == skip[0].start:
                    offsets, times = skip
                    position = offsets.stop
                    if times is not None:
                        if times > 1:
                            self.cluster.skips[key] = (offsets, times - 1)
                        else:
                            del self.cluster.skips[key]
                if position < len(log):
                    taken.append(FakeMessage(*key, position, log[position]))
                    self.positions[key] = position + 1
                    self.at_eof.discard(key)
                    progress = True
                elif key not in self.at_eof:
                    taken.append(FakeMessage(*key, len(log), None, FakeError(KafkaError._PARTITION_EOF)))
                    self.at_eof.add(key)
                    progress = True
                if len(taken) >= limit:
                    break
            self._turn += 1
        return taken


class FakeExecutor:
    """Runs nothing: ``handler(message, failures)`` returns each outcome (DONE by default); calls are recorded."""

    def __init__(self, handler: Callable[[Any, int], Outcome] | None = None) -> None:
        self.handler = handler or (lambda message, failures: Outcome(Verdict.DONE))
        self.calls: list[tuple[str, int, int, bytes | None, int, Envelope | None]] = []
        self.forgotten: list[tuple[str, int]] = []
        self.closed = False
        self.lock = threading.Lock()

    def process(
        self, message: Any, route: Route, failures: int, owned: Callable[[], bool], *, envelope: Envelope | None = None
    ) -> Outcome:
        with self.lock:
            self.calls.append(
                (message.topic(), message.partition(), message.offset(), message.value(), failures, envelope)
            )
        return self.handler(message, failures)

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        with self.lock:
            self.forgotten.extend(partitions)

    def close(self) -> None:
        self.closed = True

    def runs(self, topic: str | None = None, partition: int | None = None) -> list[int]:
        """Return the offsets run so far (of one partition, if given), in call order."""
        with self.lock:
            return [c[2] for c in self.calls if topic in (None, c[0]) and partition in (None, c[1])]


class Gates:
    """Jobs that block until the test opens their gate (by message value)."""

    def __init__(self) -> None:
        self.events: dict[bytes, threading.Event] = collections.defaultdict(threading.Event)
        self.started: set[bytes] = set()
        self.lock = threading.Lock()

    def wait(self, value: bytes, timeout: float = 30.0) -> None:
        """Block the calling job thread until ``open(value)`` (bounded, so a failing test cannot hang)."""
        with self.lock:
            self.started.add(value)
            event = self.events[value]
        event.wait(timeout)

    def open(self, *values: bytes) -> None:
        for value in values:
            with self.lock:
                event = self.events[value]
            event.set()

    def has_started(self, value: bytes) -> bool:
        with self.lock:
            return value in self.started


def settings(**overrides: Any) -> KafkaJobsSettings:
    """Return worker settings for unit tests (short timeouts), with ``overrides``."""
    values: dict[str, Any] = {
        "group_id": "unit",
        "concurrency": 2,
        "max_buffered_messages": 100,
        "shutdown_timeout": 5.0,
        "revoke_timeout": 5.0,
        **overrides,
    }
    return KafkaJobsSettings(**values)


class WorkerRun:
    """A ``Worker`` with a fake consumer and executor, run on a background thread."""

    def __init__(
        self,
        cluster: FakeCluster,
        routes: Iterable[Route],
        executor: Any,
        *,
        auto_assign: bool = True,
        hold_commits: bool = False,
        **options: Any,
    ) -> None:
        self.cluster = cluster
        self.consumer: FakeConsumer | None = None
        self.auto_assign = auto_assign
        self.hold_commits = hold_commits
        worker_settings = options.pop("settings", None) or settings()
        self.shutdown = Shutdown()
        self.worker = Worker(
            worker_settings,
            list(routes),
            shutdown=self.shutdown,
            consumer_factory=self._consumer,
            executor=executor,
            **options,
        )
        self.exit_code: Any = None
        self.thread = threading.Thread(target=self._run, name="fake-worker-poll", daemon=True)

    def _consumer(self, on_commit: Callable[[Any, list[TopicPartition]], None]) -> FakeConsumer:
        consumer = FakeConsumer(self.cluster, on_commit)
        consumer.hold_commits = self.hold_commits
        if self.auto_assign:
            consumer.assign()
        self.consumer = consumer
        return consumer

    def _run(self) -> None:
        self.exit_code = self.worker.run()

    def start(self) -> WorkerRun:
        self.thread.start()
        return self

    def wait(self, timeout: float = 30.0) -> Any:
        """Wait for ``run()`` to return; return its exit code."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not stop"
        return self.exit_code

    def stop(self, timeout: float = 30.0) -> Any:
        """Ask the worker to stop gracefully and wait for it."""
        self.shutdown.request("the test is over")
        return self.wait(timeout)
