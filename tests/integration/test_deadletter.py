"""The dead letter queue tools against a real broker: ``kafkadlq list`` and ``kafkadlq replay``."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from kafka_jobs.deadletter import DeadLetterTopic, read_dead_letters
from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.integration.test_failures import (
    dead_letters,
    headers_of,
    produce_raw,
    read_topic,
    run_burst,
    runs_of,
)
from tests.jobs import FailingJob

pytestmark = pytest.mark.integration


def kafkadlq(*args: str) -> str:
    out = io.StringIO()
    call_command("kafkadlq", *args, stdout=out)
    return out.getvalue()


def test_list_shows_each_dead_letter_with_its_job_error_and_source_and_garbage_too(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = FailingJob.set(queue="dlq0").perform_later(log, 99)
    get_producer().flush(10)  # before the raw message, so the job is at offset 0
    produce_raw(kafka_env, "dlq0", (b"\x00garbage", []))
    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    source = kafka_env.topic("dlq0")

    letters = read_dead_letters(kafka_env.topic("dlq0.dead"))
    output = kafkadlq("list", "--queue", "dlq0")
    latest = kafkadlq("list", "--queue", "dlq0", "--limit", "1")

    first, second = letters
    assert (first.job_name, first.job_id, first.attempts) == ("tests.jobs.FailingJob", job.job_id, 1)
    assert first.error == "builtins.RuntimeError: planned failure 1 of 99"
    assert (first.source_topic, first.source_partition, first.source_offset) == (source, 0, 0)
    assert first.consumer_group == kafka_env.group_id
    assert first.failed_at is not None and first.traceback is not None and not first.replayed
    assert (second.job_name, second.job_id, second.source_offset) == (None, None, 1)
    assert second.exception_class == "kafka_jobs.exceptions.DecodeError"
    assert second.value == b"\x00garbage"

    lines = output.splitlines()
    assert lines[0] == (
        f"{kafka_env.topic('dlq0.dead')} (queue dlq0): 2 message(s) shown: 0 replayed, 0 passed over, 2 pending"
    )
    assert f"0:0  pending      {first.failed_at}  tests.jobs.FailingJob id={job.job_id}  from {source}/0@0" in lines[1]
    assert "attempts=1  builtins.RuntimeError: planned failure 1 of 99" in lines[1]
    assert f"0:1  pending      {second.failed_at}  (undecodable) id=?  from {source}/0@1" in lines[2]
    assert "kafka_jobs.exceptions.DecodeError" in lines[2]
    assert latest.splitlines()[1:] == [lines[2]]  # the most recent one
    # Reading took nothing from the worker's group, and committed nothing anywhere.
    assert kafka_env.committed("dlq0") == 2
    assert kafka_env.committed("dlq0.dead") < 0


def test_replay_runs_a_dead_lettered_job_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = FailingJob.set(queue="dlq0", partition_key="k-1").perform_later(log, 1)  # fails once, then succeeds
    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    assert len(runs_of(log, job.job_id)) == 1
    (dead,) = dead_letters(kafka_env, "dlq0")

    output = kafkadlq("replay", "--queue", "dlq0", "--all")

    assert "1 message(s) replayed" in output
    original, replayed = read_topic(kafka_env.bootstrap, kafka_env.topic("dlq0"))
    assert (replayed.key(), replayed.value()) == (original.key(), original.value()) == (b"k-1", dead.value())
    headers = headers_of(replayed)
    assert headers["kj-replayed-from"] == f"{kafka_env.topic('dlq0.dead')}/0/0"
    assert headers["kj-id"] == job.job_id
    assert not any(key.startswith("kj-dlq-") for key in headers)

    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    assert len(runs_of(log, job.job_id)) == 2  # replayed, ran again and succeeded

    again = kafkadlq("replay", "--queue", "dlq0", "--all")
    assert "0 message(s) replayed" in again
    with pytest.raises(CommandError, match=r"were replayed already .* --force"):
        kafkadlq("replay", "--queue", "dlq0", "--offsets", "0")
    assert len(read_topic(kafka_env.bootstrap, kafka_env.topic("dlq0"))) == 2  # nothing more was produced
    assert "replayed" in kafkadlq("list", "--queue", "dlq0").splitlines()[1]

    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    assert len(runs_of(log, job.job_id)) == 2
    assert len(dead_letters(kafka_env, "dlq0")) == 1


def test_replay_of_selected_offsets_replays_only_those_and_force_replays_again(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    jobs = [FailingJob.set(queue="dlq0").perform_later(log, 1, tag=str(i)) for i in range(3)]
    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    assert len(dead_letters(kafka_env, "dlq0")) == 3  # DLQ offsets 0, 1, 2 hold jobs 0, 1, 2

    selected = kafkadlq("replay", "--queue", "dlq0", "--offsets", "1")
    rest = kafkadlq("replay", "--queue", "dlq0", "--all")
    with pytest.raises(CommandError, match=r"0:1 .* were replayed already .*--force"):
        kafkadlq("replay", "--queue", "dlq0", "--offsets", "1")
    with pytest.raises(CommandError, match=r"0:0 .* were replayed already"):
        kafkadlq("replay", "--queue", "dlq0", "--offsets", "0")
    forced = kafkadlq("replay", "--queue", "dlq0", "--offsets", "2", "--force")
    with pytest.raises(CommandError, match="No message at 0:9"):
        kafkadlq("replay", "--queue", "dlq0", "--offsets", "9")

    assert "replayed 0:1 ->" in selected and "1 message(s) replayed" in selected and "passed over" not in selected
    assert "replayed 0:0 ->" in rest and "replayed 0:2 ->" in rest and "2 message(s) replayed" in rest
    assert "replayed 0:2 ->" in forced
    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    assert [len(runs_of(log, job.job_id)) for job in jobs] == [2, 2, 3]  # once each, and once more when forced


def list_states(queue: str) -> dict[str, str]:
    """Return ``PARTITION:OFFSET -> state`` as ``kafkadlq list`` shows them."""
    rows = [line.split() for line in kafkadlq("list", "--queue", queue).splitlines()[1:]]
    return {row[0]: row[1] if row[1] != "passed" else "passed over" for row in rows}


def test_list_shows_a_message_as_replayed_only_once_it_was(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    for i in range(4):
        FailingJob.set(queue="dlq0").perform_later(log, 1, tag=str(i))
    worker = run_burst(kafka_env, "dlq0")
    assert worker.proc.returncode == 0, worker.output()
    assert len(dead_letters(kafka_env, "dlq0")) == 4

    kafkadlq("replay", "--queue", "dlq0", "--offsets", "2")  # the others stay pending
    assert list_states("dlq0") == {"0:0": "pending", "0:1": "pending", "0:2": "replayed", "0:3": "pending"}
    summary = kafkadlq("list", "--queue", "dlq0").splitlines()[0]
    assert summary.endswith("4 message(s) shown: 1 replayed, 0 passed over, 3 pending")

    kafkadlq("replay", "--queue", "dlq0", "--offsets", "0")
    assert list_states("dlq0") == {"0:0": "replayed", "0:1": "pending", "0:2": "replayed", "0:3": "pending"}

    kafkadlq("replay", "--queue", "dlq0", "--all")
    assert list_states("dlq0") == {"0:0": "replayed", "0:1": "replayed", "0:2": "replayed", "0:3": "replayed"}
    with DeadLetterTopic(kafka_env.topic("dlq0.dead")) as dlq:  # a page, as a dashboard reads one
        page = [(d.offset, d.state.value) for d in dlq.letters({0: 1}, {0: 3})]
    assert page == [(1, "replayed"), (2, "replayed")]
