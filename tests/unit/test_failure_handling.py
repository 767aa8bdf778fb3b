"""The executor's failure handling with a fake message and dead letter producer: what happens to a failed
job, which signals fire with which payloads, and what the log lines say."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError

from kafka_jobs import BrokerUnavailable, Job, MessageInfo, retry_on, signals
from kafka_jobs.conf import get_settings
from kafka_jobs.deadletter import delivery as delivery_module
from kafka_jobs.deadletter.writer import DeadLetterWriteFailed
from kafka_jobs.producer import OutgoingMessage
from kafka_jobs.routing import Route, active_job_topic
from kafka_jobs.serializer import Envelope, JsonSerializer
from kafka_jobs.worker import executor as executor_module
from kafka_jobs.worker.executor import Executor, Outcome, Verdict

SIGNALS = ("job_started", "job_succeeded", "job_failed", "job_retried", "job_discarded", "job_dead_lettered")
DLQ_ROUTE = active_job_topic("jobs", dead_letter_queue={"topic": "jobs.dead", "max_retries": 1})
PLAIN_ROUTE = active_job_topic("jobs")
seen: list[dict[str, Any]] = []


class UnitJob(Job):
    """Does what ``action`` says, after noting what it knows about itself."""

    queue_as = "jobs"
    job_name = "unit.UnitJob"

    def perform(self, action: str) -> str:
        seen.append({"executions": self.executions, "job_id": self.job_id, "message": self.message})
        errors: dict[str, BaseException] = {
            "fail": RuntimeError("boom"),
            "exit": SystemExit(2),
            "interrupt": KeyboardInterrupt(),
            "memory": MemoryError(),
            "lookup": KeyError("gone"),
            "timeout": TimeoutError("slow"),
        }
        if action in errors:
            raise errors[action]
        return f"done {action}"


class RulesJob(UnitJob):
    """UnitJob with Rails-style rules."""

    job_name = "unit.RulesJob"
    retry_on = [retry_on(TimeoutError, wait=7, attempts=2, jitter=0)]
    discard_on = [LookupError]


class FakeMessage:
    """The parts of confluent_kafka.Message the executor uses."""

    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> None:
        self._value = value
        self._headers = headers

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes:
        return b"the-key"

    def topic(self) -> str:
        return "jobs"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


class FakeProducer:
    """A dead letter producer that records what it wrote; ``fail`` (or ``refuse``) makes the next sends raise."""

    def __init__(self) -> None:
        self.produced: list[OutgoingMessage] = []
        self.attempted: list[OutgoingMessage] = []
        self.fail: Exception | None = None
        self.refuse: Any = lambda message: False  # message -> True: refused for good (as if too large)

    def send(self, message: OutgoingMessage) -> None:
        self.attempted.append(message)
        if self.fail is not None:
            raise self.fail
        if self.refuse(message):
            raise DeadLetterWriteFailed(f"{message.description}: MSG_SIZE_TOO_LARGE: too large", permanent=True)
        self.produced.append(message)


WHERE = MessageInfo("jobs", 2, 41, b"the-key")


def message_for(job: Job) -> FakeMessage:
    return FakeMessage(JsonSerializer().dumps(job), [("kj-job", job.job_name.encode()), ("kj-id", job.job_id.encode())])


@pytest.fixture(autouse=True)
def producer(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    fake = FakeProducer()
    monkeypatch.setattr(delivery_module, "DeadLetterProducer", lambda *args: fake)
    seen.clear()
    return fake


@pytest.fixture
def events() -> Iterator[list[tuple[str, type, dict[str, Any]]]]:
    """Every kafka_jobs signal sent during the test, as (name, sender, kwargs)."""
    received: list[tuple[str, type, dict[str, Any]]] = []
    receivers = {}
    for name in SIGNALS:

        def receiver(sender: type, name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal")
            received.append((name, sender, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def run(message: FakeMessage, route: Route = DLQ_ROUTE, failures: int = 0, owned: bool = True) -> Outcome:
    return Executor(get_settings()).process(message, route, failures, lambda: owned)


def names(events: list[tuple[str, type, dict[str, Any]]]) -> list[str]:
    return [name for name, _, _ in events]


def test_a_succeeding_job_sends_started_and_succeeded_with_the_job_its_message_and_duration(events: list) -> None:
    job = UnitJob("ok")

    outcome = run(message_for(job))

    assert outcome == Outcome(Verdict.DONE)
    assert names(events) == ["job_started", "job_succeeded"]
    (_, sender, started), (_, _, succeeded) = events
    assert sender is UnitJob
    assert started["job"].job_id == job.job_id and started["message"] == WHERE
    assert succeeded["job"] is started["job"]
    assert succeeded["message"] == WHERE and succeeded["result"] == "done ok"
    assert succeeded["duration"] >= 0
    assert seen == [{"executions": 1, "job_id": job.job_id, "message": WHERE}]


def test_a_failure_with_retries_left_sends_failed_will_retry_and_retried_with_the_route_backoff(events: list) -> None:
    job = UnitJob("fail")

    outcome = run(message_for(job), failures=0)  # DLQ after max_retries=1

    assert outcome.verdict is Verdict.RETRY and outcome.counts_as_failure
    assert outcome.delay == get_settings().backoff.delay(1) == 0.2
    assert names(events) == ["job_started", "job_failed", "job_retried"]
    failed, retried = events[1][2], events[2][2]
    assert failed["will_retry"] is True and isinstance(failed["exception"], RuntimeError)
    assert failed["message"] == WHERE and failed["duration"] >= 0 and failed["job"].job_id == job.job_id
    assert retried["delay"] == 0.2 and retried["exception"] is failed["exception"] and retried["message"] == WHERE


def test_a_failure_with_retries_spent_is_dead_lettered_synchronously_and_signalled(
    events: list, producer: FakeProducer
) -> None:
    job = UnitJob("fail")
    message = message_for(job)

    outcome = run(message, failures=1)

    assert outcome.verdict is Verdict.DONE
    assert seen[0]["executions"] == 2
    (dead,) = producer.produced  # acknowledged (send returned) before the outcome lets the listener mark it
    assert (dead.topic, dead.key, dead.value) == ("jobs.dead", b"the-key", message.value())
    headers = dict(dead.headers)
    assert headers["kj-dlq-attempts"] == b"2" and headers["kj-dlq-source-offset"] == b"41"
    assert names(events) == ["job_started", "job_failed", "job_dead_lettered"]
    assert events[1][2]["will_retry"] is False
    dead_lettered = events[2][2]
    assert dead_lettered["job"].job_id == job.job_id and dead_lettered["message"] == WHERE
    assert dead_lettered["dlq_topic"] == "jobs.dead" and isinstance(dead_lettered["exception"], RuntimeError)


def test_without_a_dead_letter_queue_a_failing_job_is_retried_with_capped_backoff(events: list) -> None:
    outcome = run(message_for(UnitJob("fail")), route=PLAIN_ROUTE, failures=50)

    assert outcome.verdict is Verdict.RETRY
    assert outcome.delay == get_settings().backoff.maximum


def test_discard_on_marks_the_job_and_sends_failed_then_discarded(events: list, producer: FakeProducer) -> None:
    outcome = run(message_for(RulesJob("lookup")))

    assert outcome.verdict is Verdict.DONE
    assert names(events) == ["job_started", "job_failed", "job_discarded"]
    assert events[1][2]["will_retry"] is False
    discarded = events[2][2]
    assert isinstance(discarded["exception"], KeyError) and discarded["message"] == WHERE
    assert producer.produced == []


def test_retry_on_waits_its_own_delay_then_the_route_policy_takes_over(producer: FakeProducer) -> None:
    message = message_for(RulesJob("timeout"))
    generous = active_job_topic("jobs", dead_letter_queue={"topic": "jobs.dead", "max_retries": 5})

    first = run(message, route=generous, failures=0)
    spent_with_dlq = run(message, route=generous, failures=1)
    spent_without_dlq = run(message, route=PLAIN_ROUTE, failures=1)

    assert (first.verdict, first.delay) == (Verdict.RETRY, 7)
    assert spent_with_dlq.verdict is Verdict.DONE  # retry_on's attempts count as the retries spent
    assert len(producer.produced) == 1
    assert (spent_without_dlq.verdict, spent_without_dlq.delay) == (Verdict.RETRY, get_settings().backoff.delay(2))


@pytest.mark.parametrize("action", ["exit", "interrupt", "memory"])
def test_a_critical_error_is_neither_retried_nor_dead_lettered(
    action: str, events: list, producer: FakeProducer
) -> None:
    outcome = run(message_for(UnitJob(action)), failures=5)  # retries long spent: an ordinary error would go

    assert outcome.verdict is Verdict.CRITICAL
    assert producer.produced == []
    assert names(events) == ["job_started", "job_failed"]
    assert events[1][2]["will_retry"] is False


def poison_payloads() -> dict[str, bytes]:
    good = json.loads(JsonSerializer().dumps(UnitJob("ok")))
    return {
        "DecodeError": b"\x00\xff garbage",
        "JobNotRegistered": json.dumps({**good, "job": "unit.NoSuchJob"}).encode(),
        "UnsupportedEnvelopeVersion": json.dumps({**good, "v": 99}).encode(),
        "ArgumentLoadError": json.dumps(
            {**good, "args": [{"_kj": "model", "model": "tests.nosuch", "pk": 1}]}
        ).encode(),
    }


@pytest.mark.parametrize("error", sorted(poison_payloads()))
def test_a_poison_message_is_dead_lettered_at_once(error: str, events: list, producer: FakeProducer) -> None:
    outcome = run(FakeMessage(poison_payloads()[error]), failures=0)

    assert outcome.verdict is Verdict.DONE
    (dead,) = producer.produced
    headers = dict(dead.headers or [])
    assert headers["kj-dlq-exception-class"] == f"kafka_jobs.exceptions.{error}".encode()
    assert headers["kj-dlq-attempts"] == b"1"
    assert names(events) == ["job_dead_lettered"]
    sender, payload = events[0][1], events[0][2]
    assert sender is Job and payload["job"] is None and payload["message"] == WHERE
    assert seen == []


def test_a_poison_message_without_a_dead_letter_queue_is_logged_at_error_with_its_coordinates_and_skipped(
    events: list, producer: FakeProducer, caplog: pytest.LogCaptureFixture
) -> None:
    message = FakeMessage(b"{oops", [("kj-job", b"app.SomeJob"), ("kj-id", b"id-1")])

    with caplog.at_level(logging.INFO, logger="kafka_jobs"):
        outcome = run(message, route=PLAIN_ROUTE)

    assert outcome.verdict is Verdict.DONE
    assert producer.produced == []
    (record,) = [r for r in caplog.records if "SKIPPED" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "app.SomeJob id=id-1 jobs/2@41 attempt=1" in record.getMessage()
    assert "DecodeError" in record.getMessage() and "b'{oops'" in record.getMessage()
    assert names(events) == ["job_discarded"] and events[0][2]["job"] is None


def test_an_error_loading_the_job_that_may_pass_follows_the_route_policy(
    monkeypatch: pytest.MonkeyPatch, producer: FakeProducer
) -> None:
    def database_down(self: Envelope) -> Job:
        raise DatabaseError("database is down")

    monkeypatch.setattr(Envelope, "to_job", database_down)
    message = message_for(UnitJob("ok"))

    first = run(message, failures=0)
    assert first.verdict is Verdict.RETRY and first.delay == 0.2
    assert producer.produced == []
    spent = run(message, failures=1)

    assert spent.verdict is Verdict.DONE
    (dead,) = producer.produced
    assert dict(dead.headers or [])["kj-dlq-exception-class"] == b"django.db.utils.DatabaseError"


def test_nothing_is_dead_lettered_for_a_partition_no_longer_owned(events: list, producer: FakeProducer) -> None:
    outcome = run(message_for(UnitJob("fail")), failures=1, owned=False)

    assert outcome.verdict is Verdict.RETRY and not outcome.counts_as_failure
    assert producer.produced == []
    assert "job_dead_lettered" not in names(events)


def test_when_the_dead_letter_write_fails_only_the_write_is_retried(events: list, producer: FakeProducer) -> None:
    executor = Executor(get_settings())
    message = message_for(UnitJob("fail"))
    producer.fail = DeadLetterWriteFailed("no broker", permanent=False)

    failed_write = executor.process(message, DLQ_ROUTE, 1, lambda: True)
    producer.fail = None
    retried_write = executor.process(message, DLQ_ROUTE, 1, lambda: True)

    assert failed_write.verdict is Verdict.RETRY and not failed_write.counts_as_failure
    assert retried_write.verdict is Verdict.DONE
    assert len(seen) == 1  # the job did not run again
    assert len(producer.produced) == 1
    assert names(events).count("job_dead_lettered") == 1


def test_a_raising_signal_receiver_does_not_change_the_outcome(caplog: pytest.LogCaptureFixture) -> None:
    def broken(**_: Any) -> None:
        raise ValueError("receiver bug")

    signals.job_failed.connect(broken)
    try:
        outcome = run(message_for(UnitJob("fail")), failures=0)
    finally:
        signals.job_failed.disconnect(broken)

    assert outcome.verdict is Verdict.RETRY and outcome.delay == 0.2
    assert any("receiver bug" in r.getMessage() for r in caplog.records)


def test_an_internal_error_before_the_job_ran_becomes_a_retry_instead_of_killing_the_job_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise RuntimeError("bug in kafka_jobs")

    monkeypatch.setattr(executor_module, "close_old_connections", broken)

    outcome = run(message_for(UnitJob("ok")), failures=1)

    assert outcome.verdict is Verdict.RETRY and outcome.counts_as_failure and isinstance(outcome.error, RuntimeError)
    assert seen == []


def test_an_internal_error_while_writing_the_dead_letter_retries_the_write_never_the_job(
    producer: FakeProducer, events: list
) -> None:
    executor = Executor(get_settings())
    message = message_for(UnitJob("fail"))
    producer.fail = RuntimeError("bug in kafka_jobs")

    first = executor.process(message, DLQ_ROUTE, 1, lambda: True)
    second = executor.process(message, DLQ_ROUTE, 1, lambda: True)
    producer.fail = None
    third = executor.process(message, DLQ_ROUTE, 1, lambda: True)

    assert [o.verdict for o in (first, second, third)] == [Verdict.RETRY, Verdict.RETRY, Verdict.DONE]
    assert not first.counts_as_failure and not second.counts_as_failure
    assert (first.delay, second.delay) == (0.2, 0.4)  # the write backs off
    assert len(seen) == 1  # the job ran once
    assert len(producer.produced) == 1
    assert names(events).count("job_failed") == 1 and names(events).count("job_dead_lettered") == 1


def test_every_log_line_about_a_job_names_it_and_its_coordinates_and_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = UnitJob("fail")

    with caplog.at_level(logging.INFO, logger="kafka_jobs.worker"):
        run(message_for(job), failures=0)
        run(message_for(job), failures=1)

    records = [r for r in caplog.records if r.name == "kafka_jobs.worker"]
    assert len(records) == 5  # started, retrying; started, retries spent, moved to the DLQ
    for record in records:
        attempt = record.kafka_job["attempt"]  # type: ignore[attr-defined]
        assert f"unit.UnitJob id={job.job_id} jobs/2@41 attempt={attempt}" in record.getMessage()
        assert record.kafka_job == {  # type: ignore[attr-defined]
            "job_name": "unit.UnitJob",
            "job_id": job.job_id,
            "topic": "jobs",
            "partition": 2,
            "offset": 41,
            "attempt": attempt,
        }
    assert [r.kafka_job["attempt"] for r in records] == [1, 1, 2, 2, 2]  # type: ignore[attr-defined]


# --- Deciding vs delivering: the dead letter write never re-runs the job -----------------------------------


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("broken __str__")

    def __repr__(self) -> str:
        raise RuntimeError("broken __repr__")


class UnprintableJob(Job):
    """Raises an exception that cannot be formatted."""

    queue_as = "jobs"
    job_name = "unit.UnprintableJob"

    def perform(self) -> None:
        seen.append({"executions": self.executions})
        raise UnprintableError()


class SpitefulRuleJob(Job):
    """Its retry_on rule's wait callable raises."""

    queue_as = "jobs"
    job_name = "unit.SpitefulRuleJob"
    retry_on = [retry_on(ValueError, wait=lambda executions: 1 / 0, attempts=5)]

    def perform(self) -> None:
        seen.append({"executions": self.executions})
        raise ValueError("retry me")


def test_an_exception_that_cannot_be_formatted_is_dead_lettered_with_fallbacks_and_logged_cleanly(
    producer: FakeProducer, events: list, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="kafka_jobs"):  # pytest's handler fails the test on a logging error
        retried = run(message_for(UnprintableJob()), failures=0)
        dead = run(message_for(UnprintableJob()), failures=1)

    assert retried.verdict is Verdict.RETRY and dead.verdict is Verdict.DONE
    assert len(seen) == 2  # once per call: never again to retry the dead letter
    (letter,) = producer.produced
    headers = dict(letter.headers or [])
    assert headers["kj-dlq-exception-class"] == b"tests.unit.test_failure_handling.UnprintableError"
    assert headers["kj-dlq-exception-message"] == (
        b"<tests.unit.test_failure_handling.UnprintableError: str() and repr() failed>"
    )
    assert b"in perform" in headers["kj-dlq-traceback"]
    assert "retries spent" in caplog.text and "repr() failed" in caplog.text
    assert names(events).count("job_dead_lettered") == 1


def test_a_retry_rule_that_raises_leaves_the_failure_to_the_route(
    producer: FakeProducer, caplog: pytest.LogCaptureFixture
) -> None:
    first = run(message_for(SpitefulRuleJob()), failures=0)
    spent = run(message_for(SpitefulRuleJob()), failures=1)

    assert (first.verdict, first.delay) == (Verdict.RETRY, 0.2)  # the route's backoff
    assert spent.verdict is Verdict.DONE and len(producer.produced) == 1
    assert "the retry_on/discard_on rules of tests.unit.test_failure_handling.SpitefulRuleJob raised" in caplog.text


def test_a_dead_letter_refused_for_good_becomes_a_stub_without_the_value(
    producer: FakeProducer, events: list, caplog: pytest.LogCaptureFixture
) -> None:
    message = message_for(UnitJob("fail"))
    producer.refuse = lambda letter: bool(letter.value)  # too large as long as it carries the value

    outcome = run(message, failures=1)

    assert outcome.verdict is Verdict.DONE
    full, stub = producer.attempted
    assert full.value == message.value()
    assert producer.produced == [stub]
    headers = dict(stub.headers or [])
    assert (stub.topic, stub.key, stub.value) == ("jobs.dead", None, b"")
    assert headers["kj-id"] == message.headers()[1][1] and headers["kj-job"] == b"unit.UnitJob"
    assert headers["kj-dlq-source-offset"] == b"41" and headers["kj-dlq-exception-message"] == b"boom"
    assert b"MSG_SIZE_TOO_LARGE" in headers["kj-dlq-stub"]
    assert int(headers["kj-dlq-original-bytes"]) > len(message.value() or b"")
    (line,) = [r for r in caplog.records if "STUB" in r.getMessage()]
    assert line.levelno == logging.ERROR and "unit.UnitJob" in line.getMessage() and "jobs/2@41" in line.getMessage()
    assert "as a stub" in caplog.text
    assert names(events) == ["job_started", "job_failed", "job_dead_lettered"]
    assert len(seen) == 1


def test_when_not_even_a_stub_can_be_written_the_message_is_skipped_loudly(
    producer: FakeProducer, events: list, caplog: pytest.LogCaptureFixture
) -> None:
    producer.refuse = lambda letter: True

    outcome = run(message_for(UnitJob("fail")), failures=1)

    assert outcome.verdict is Verdict.DONE  # finite: the partition goes on
    assert len(producer.attempted) == 2 and producer.produced == []
    (line,) = [r for r in caplog.records if "SKIPPED without a dead letter" in r.getMessage()]
    assert line.levelno == logging.ERROR and "jobs/2@41" in line.getMessage()
    assert names(events) == ["job_started", "job_failed", "job_discarded"]


def test_a_broker_outage_retries_the_stub_write_and_keeps_it_a_stub(producer: FakeProducer, events: list) -> None:
    executor = Executor(get_settings())
    message = message_for(UnitJob("fail"))
    producer.refuse = lambda letter: bool(letter.value)
    original = producer.send

    def outage_after_the_refusal(letter: OutgoingMessage) -> None:
        if not letter.value and len(producer.attempted) < 2:  # the first stub write meets an outage
            producer.attempted.append(letter)
            raise DeadLetterWriteFailed("broker unreachable", permanent=False)
        original(letter)

    producer.send = outage_after_the_refusal  # type: ignore[method-assign]

    first = executor.process(message, DLQ_ROUTE, 1, lambda: True)
    second = executor.process(message, DLQ_ROUTE, 1, lambda: True)

    assert first.verdict is Verdict.RETRY and not first.counts_as_failure
    assert second.verdict is Verdict.DONE
    assert [bool(m.value) for m in producer.attempted] == [True, False, False]  # the full copy is tried once
    assert len(seen) == 1


def test_a_decided_dead_letter_is_forgotten_when_the_partition_is_lost(producer: FakeProducer) -> None:
    executor = Executor(get_settings())
    message = message_for(UnitJob("fail"))
    producer.fail = DeadLetterWriteFailed("no broker", permanent=False)
    executor.process(message, DLQ_ROUTE, 1, lambda: True)

    lost = executor.process(message, DLQ_ROUTE, 1, lambda: False)
    producer.fail = None
    again = executor.process(message, DLQ_ROUTE, 0, lambda: True)  # owned again later: it is a new first run

    assert lost.verdict is Verdict.RETRY and not lost.counts_as_failure
    assert again.verdict is Verdict.RETRY and len(seen) == 2 and producer.produced == []


@pytest.mark.parametrize(
    "error", [RecursionError("too deep"), TypeError("weird"), KeyError("x"), OverflowError("big")], ids=repr
)
def test_any_error_building_the_job_is_poison_whatever_its_type(
    error: Exception, monkeypatch: pytest.MonkeyPatch, producer: FakeProducer
) -> None:
    def broken(self: Envelope) -> Job:
        raise error

    monkeypatch.setattr(Envelope, "to_job", broken)

    with_dlq = run(message_for(UnitJob("ok")))
    without = run(message_for(UnitJob("ok")), route=PLAIN_ROUTE)

    assert with_dlq.verdict is Verdict.DONE and len(producer.produced) == 1  # dead-lettered at once
    assert dict(producer.produced[0].headers or [])["kj-dlq-attempts"] == b"1"
    assert without.verdict is Verdict.DONE  # skipped
    assert seen == []


@pytest.mark.parametrize(
    ("error", "may_pass"),
    [
        (OperationalError("database is locked"), True),
        (InterfaceError("connection already closed"), True),
        (ConnectionResetError("peer"), True),
        (DataError("value too long"), False),
        (IntegrityError("duplicate key"), False),
    ],
    ids=repr,
)
def test_only_errors_that_may_pass_follow_the_retry_policy_when_loading_a_job(
    error: Exception, may_pass: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(self: Envelope) -> Job:
        raise error

    monkeypatch.setattr(Envelope, "to_job", failing)

    outcome = run(message_for(UnitJob("ok")), route=PLAIN_ROUTE)

    assert outcome.verdict is (Verdict.RETRY if may_pass else Verdict.DONE)


def test_decisions_for_partitions_the_worker_lost_are_forgotten(producer: FakeProducer) -> None:
    executor = Executor(get_settings())
    message = message_for(UnitJob("fail"))
    producer.fail = DeadLetterWriteFailed("no broker", permanent=False)
    executor.process(message, DLQ_ROUTE, 1, lambda: True)  # decided; the write is pending

    executor.forget_partitions([("jobs", 1), ("other", 2)])  # not this partition
    kept = executor.process(message, DLQ_ROUTE, 1, lambda: True)
    runs_before = len(seen)
    executor.forget_partitions([("jobs", 2)])
    producer.fail = None
    again = executor.process(message, DLQ_ROUTE, 0, lambda: True)  # assigned again: a first run

    assert kept.verdict is Verdict.RETRY and runs_before == 1  # only the write was retried
    assert again.verdict is Verdict.RETRY and len(seen) == 2 and producer.produced == []


# --- retry="delay" (worktree delays) ---------------------------------------------------------------------------

DELAY_ROUTE = active_job_topic("jobs", retry="delay", dead_letter_queue={"topic": "jobs.dead", "max_retries": 2})


class JobProducer:
    """The process producer, through which a retry="delay" job is enqueued again; ``fail`` makes it raise."""

    def __init__(self) -> None:
        self.produced: list[tuple[list[OutgoingMessage], bool]] = []
        self.fail: Exception | None = None

    def produce(self, messages: list[OutgoingMessage], *, sync: bool) -> None:
        if self.fail is not None:
            raise self.fail
        self.produced.append((list(messages), sync))


@pytest.fixture
def job_producer(monkeypatch: pytest.MonkeyPatch) -> JobProducer:
    fake = JobProducer()
    monkeypatch.setattr(executor_module, "get_producer", lambda: fake)
    return fake


def test_with_retry_delay_a_failed_job_is_committed_and_enqueued_again_through_the_tiers(
    job_producer: JobProducer, events: list
) -> None:
    job = UnitJob("fail")

    outcome = run(message_for(job), route=DELAY_ROUTE)

    assert outcome.verdict is Verdict.DONE  # its partition moves on
    [([again], sync)] = job_producer.produced
    assert sync  # acknowledged before the failed message is committed
    assert again.topic.startswith(get_settings().queue_prefix + "kafka_jobs.delay.")
    assert dict(again.headers or [])["kj-delay-topic"] == b"jobs"
    assert dict(again.headers or [])["kj-delay-partition"] == b"2"
    assert again.key == b"the-key"
    envelope = JsonSerializer().loads(again.value)
    assert (envelope.job_id, envelope.executions) == (job.job_id, 1)
    assert names(events) == ["job_started", "job_failed", "job_retried"]


def test_a_job_retried_through_the_tiers_counts_its_earlier_runs_and_is_dead_lettered_after_its_retries(
    job_producer: JobProducer, producer: FakeProducer
) -> None:
    job = UnitJob("fail")
    job.executions = 2  # it ran twice before this message

    outcome = run(message_for(job), route=DELAY_ROUTE)

    assert outcome.verdict is Verdict.DONE
    assert seen[-1]["executions"] == 3
    assert job_producer.produced == []
    [letter] = producer.produced
    assert letter.topic == "jobs.dead"
    assert dict(letter.headers or [])["kj-dlq-attempts"] == b"3"


def test_when_the_retry_cannot_be_enqueued_the_job_waits_at_the_head_of_its_partition(
    job_producer: JobProducer,
) -> None:
    job_producer.fail = BrokerUnavailable("down")

    outcome = run(message_for(UnitJob("fail")), route=DELAY_ROUTE)

    assert outcome.verdict is Verdict.RETRY
    assert outcome.delay == get_settings().backoff.delay(1)


def test_a_partition_no_longer_owned_is_not_retried_through_the_tiers(job_producer: JobProducer) -> None:
    outcome = run(message_for(UnitJob("fail")), route=DELAY_ROUTE, owned=False)

    assert outcome.verdict is Verdict.RETRY
    assert job_producer.produced == []
