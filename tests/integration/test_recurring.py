"""Recurring jobs fire once per tick, from whichever worker owns the schedule topic, across restarts."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import signal
import time
from typing import Any

import pytest
from django.core.management import call_command

from kafka_jobs.recurring.loader import get_recurring
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv, WorkerProcess
from tests.jobs import read_records_so_far

pytestmark = [pytest.mark.integration, pytest.mark.kafka_jobs_overrides({"ROUTES": "tests.recurring_routes"})]

SCHEDULE = "every-second"


def _ticks(log: str, since: float) -> dict[str, dt.datetime]:
    """Return job id -> tick for every tick of the schedule from ``since`` to a little after now."""
    [recurring] = get_recurring()
    start = dt.datetime.fromtimestamp(int(since) - 5, dt.UTC)
    ticks = (start + dt.timedelta(seconds=n) for n in range(int(time.time() - since) + 15))
    return {recurring.job_id(tick): tick for tick in ticks}


def _runs(log: str) -> list[dict[str, Any]]:
    return [r for r in read_records_so_far(log) if r.get("event") == "tick"]


def _fired_ticks(log: str, since: float) -> list[dt.datetime]:
    """Return the tick of every run, in the order the jobs were enqueued; fail on an unknown job id."""
    ids = _ticks(log, since)
    runs = sorted(_runs(log), key=lambda r: r["enqueued_at"])
    unknown = [r["job_id"] for r in runs if r["job_id"] not in ids]
    assert not unknown, f"job ids that are not ticks of {SCHEDULE!r}: {unknown}"
    return [ids[r["job_id"]] for r in runs]


def _last_fire() -> dt.datetime:
    """Return the last fired tick, as the schedule topic records it (``kafkascheduled --json``)."""
    out = io.StringIO()
    call_command("kafkascheduled", "--json", stdout=out)
    [schedule] = json.loads(out.getvalue())["schedules"]
    return dt.datetime.fromisoformat(schedule["last_tick"])


def _fires_now(worker: WorkerProcess) -> bool:
    """True if the worker's last word on the schedule topic is that it fires (it was not revoked since)."""
    text = worker.output()
    return text.rfind("this process now fires") > text.rfind("another process fires the schedules now")


def _owner(workers: list[WorkerProcess]) -> WorkerProcess:
    # The topic may have moved once already: a worker that joined after the first fire can take it over.
    owners = [w for w in workers if _fires_now(w)]
    assert len(owners) == 1, [w.output()[-2000:] for w in workers]
    return owners[0]


def test_two_workers_fire_each_tick_once_and_the_other_takes_over(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file("ticks.log")
    started = time.time()
    workers = [kafka_env.start_worker("--queues", "delayed", KAFKA_JOBS_TEST_TICK_LOG=log) for _ in range(2)]
    wait_for(lambda: len(_runs(log)) >= 5, 60, message=lambda: f"{len(_runs(log))} ticks ran")

    owner = _owner(workers)
    owner.send(signal.SIGTERM)
    assert owner.wait() == 0, owner.output()
    stopped = len(_runs(log))
    wait_for(lambda: len(_runs(log)) >= stopped + 4, 60, message="the remaining worker did not take over")

    fired = _fired_ticks(log, started)
    assert len(fired) == len(set(fired)), f"a tick fired twice: {fired}"
    assert fired == sorted(fired)
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(fired)]
    assert steps.count(1.0) >= len(steps) - 1  # one tick a second; the takeover may collapse a few into one
    [survivor] = [w for w in workers if w is not owner]
    assert "this process now fires" in survivor.output()


def test_after_downtime_missed_ticks_collapse_into_one_fire_and_ticks_go_on(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file("ticks.log")
    started = time.time()
    first = kafka_env.start_worker("--queues", "delayed", KAFKA_JOBS_TEST_TICK_LOG=log)
    wait_for(lambda: len(_runs(log)) >= 3, 60, message=lambda: f"{len(_runs(log))} ticks ran")
    first.send(signal.SIGTERM)
    assert first.wait() == 0, first.output()
    last_before = _last_fire()  # its job may not have run yet: a stopping worker starts no new job
    wait_for(lambda: time.time() >= last_before.timestamp() + 7.5, 15)  # ticks pass with no scheduler running

    restarted_at = time.time()
    kafka_env.start_worker("--queues", "delayed", KAFKA_JOBS_TEST_TICK_LOG=log)
    wait_for(
        lambda: len([tick for tick in _fired_ticks(log, started) if tick > last_before]) >= 3,
        60,
        message="the restarted worker fired too few ticks",
    )

    fired = _fired_ticks(log, started)
    assert len(fired) == len(set(fired)), f"a tick fired twice: {fired}"
    after = [tick for tick in fired if tick > last_before]
    catch_up = after[0]
    # The ticks missed while no worker ran (more than grace=3 s late) collapsed into one fire, the latest.
    assert catch_up.timestamp() >= restarted_at - 3
    assert catch_up - last_before >= dt.timedelta(seconds=4)
    assert len(after) >= 3  # and the schedule goes on


@pytest.mark.kafka_jobs_overrides({"ROUTES": "tests.kafka_routes"})
def test_a_worker_refuses_to_start_with_a_schedule_name_declared_twice(kafka_env: KafkaEnv) -> None:
    overrides = json.dumps({"ROUTES": "tests.recurring_routes_bad"})
    worker = kafka_env.start_worker("--queues", "delayed", KAFKA_JOBS_TEST_OVERRIDES=overrides)

    assert worker.wait(60) == 1
    assert "declares the schedule name 'twice' twice" in worker.output()


def test_kafkatopics_creates_a_compacted_schedule_topic_and_kafkascheduled_shows_the_schedule(
    kafka_env: KafkaEnv,
) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    topic = kafka_env.prefix + "kafka_jobs.schedules"
    admin = AdminClient({"bootstrap.servers": kafka_env.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["cleanup.policy"].value == "compact"
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 1

    log = kafka_env.log_file("ticks.log")
    kafka_env.start_worker("--queues", "delayed", KAFKA_JOBS_TEST_TICK_LOG=log)
    wait_for(lambda: len(_runs(log)) >= 2, 60, message="no tick ran")
    out = io.StringIO()
    call_command("kafkascheduled", stdout=out)
    text = out.getvalue()
    assert "every-second: tests.jobs.TickJob, every 0:00:01, missed=latest" in text
    assert "next tick: " in text
    assert re.search(r"last fire: \S+ \([0-9.]+s ago\), job [0-9a-f-]{36}", text), text
