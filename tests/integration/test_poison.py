"""Poison messages in real worker processes: envelopes with fields of the wrong type and arguments nested
too deeply are never run and never retried; nesting that deep is refused at enqueue too."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from kafka_jobs.arguments import MAX_DEPTH
from kafka_jobs.exceptions import EncodeError
from kafka_jobs.producer import get_producer
from kafka_jobs.serializer import JsonSerializer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_failures import dead_letters, headers_of, produce_raw, runs_of
from tests.jobs import RecordJob

pytestmark = pytest.mark.integration


def nested(depth: int) -> Any:
    """Return a list nested ``depth`` levels deep."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def poison_envelopes(log: str, queue: str) -> dict[str, tuple[str, bytes]]:
    """Return name -> (job id, message value) of envelopes that name a real job but can never run."""
    cases: dict[str, dict[str, Any]] = {
        "locale is a number": {"locale": 123},
        "timezone is a list": {"timezone": ["Europe/Paris"]},
        "queue is an object": {"queue": {"name": queue}},
        "executions is text": {"executions": "2"},
        "arguments nested 600 deep": {"args": [log, nested(600)]},
        "arguments nested past the limit": {"args": [log, nested(MAX_DEPTH + 1)]},
    }
    envelopes = {}
    for name, fields in cases.items():
        job = RecordJob(log, name)
        body = {**json.loads(JsonSerializer().dumps(job)), "queue": queue, **fields}
        envelopes[name] = (job.job_id, json.dumps(body).encode())
    return envelopes


def test_poison_envelopes_on_a_route_without_a_dead_letter_queue_are_skipped_and_the_partition_goes_on(
    kafka_env: KafkaEnv,
) -> None:
    log = kafka_env.log_file()
    envelopes = poison_envelopes(log, "single")
    produce_raw(kafka_env, "single", *((value, [("kj-id", job_id.encode())]) for job_id, value in envelopes.values()))
    behind = RecordJob.set(queue="single").perform_later(log, "behind")
    get_producer().flush(10)

    worker = kafka_env.start_worker("--queues", "single")
    wait_for(lambda: runs_of(log, behind.job_id), timeout=60, message=worker.output)
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()

    output = worker.output()
    skipped = [line for line in output.splitlines() if "SKIPPED" in line]
    for job_id, _ in envelopes.values():
        assert runs_of(log, job_id) == [], output
        assert any(f"id={job_id} " in line and "DecodeError" in line for line in skipped), output
    assert "retrying in" not in output
    assert kafka_env.committed("single") == len(envelopes) + 1


def test_poison_envelopes_on_a_route_with_a_dead_letter_queue_are_dead_lettered_at_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    envelopes = poison_envelopes(log, "dlq")
    produce_raw(kafka_env, "dlq", *((value, [("kj-id", job_id.encode())]) for job_id, value in envelopes.values()))
    behind = RecordJob.set(queue="dlq").perform_later(log, "behind")
    get_producer().flush(10)

    worker = kafka_env.start_worker("--queues", "dlq")
    wait_for(lambda: runs_of(log, behind.job_id), timeout=60, message=worker.output)
    letters = wait_for(lambda: (found := dead_letters(kafka_env, "dlq")) and len(found) == len(envelopes) and found, 30)
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()

    by_id = {headers_of(m)["kj-id"]: headers_of(m) for m in letters}
    assert set(by_id) == {job_id for job_id, _ in envelopes.values()}
    assert all(h["kj-dlq-exception-class"] == "kafka_jobs.exceptions.DecodeError" for h in by_id.values())
    assert all(h["kj-dlq-attempts"] == "1" for h in by_id.values())
    assert all(runs_of(log, job_id) == [] for job_id in by_id)
    assert "retrying in" not in worker.output()


def test_arguments_nested_too_deeply_are_refused_at_enqueue_and_the_deepest_allowed_run(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()

    with pytest.raises(EncodeError, match="nested"):
        RecordJob.set(queue="single").perform_later(log, nested(1000))
    with pytest.raises(EncodeError, match="nested"):
        RecordJob.set(queue="single").perform_later(log, nested(MAX_DEPTH + 1))
    deepest = RecordJob.set(queue="single").perform_later(log, nested(MAX_DEPTH))
    get_producer().flush(10)

    worker = kafka_env.start_worker("--queues", "single")
    (run,) = wait_for(lambda: runs_of(log, deepest.job_id), timeout=60, message=worker.output)
    assert run["args"] == [nested(MAX_DEPTH)]
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    assert kafka_env.committed("single") == 1  # nothing else was produced
