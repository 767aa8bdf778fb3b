"""The health file's verdicts, the clear error when the metrics extra is missing, the reserved topic names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kafka_jobs.exceptions import ConfigurationError, ReportError
from kafka_jobs.ops.health import Health, HealthFile
from kafka_jobs.ops.metrics import MetricsServer


def test_health_verdicts() -> None:
    health = Health(pid=1, worker_id="w", loop=100.0, consumer_ok=90.0)
    assert health.problem(110.0, max_loop_age=30, max_consumer_age=60) is None
    assert health.problem(131.0, max_loop_age=30, max_consumer_age=60)[0] == 2  # type: ignore[index]
    code, why = health.problem(151.0, max_loop_age=60, max_consumer_age=60)  # type: ignore[misc]
    assert code == 3 and "group coordinator" in why


def test_health_file_records_the_coordinator_state_from_librdkafka_statistics(tmp_path: Path) -> None:
    path = str(tmp_path / "health")
    file = HealthFile(path, "w")
    file.consumer_ok = 0.0
    file.on_stats(json.dumps({"cgrp": {"state": "wait-coord"}}))
    file.on_stats("not json")
    assert file.consumer_ok == 0.0
    file.on_stats(json.dumps({"cgrp": {"state": "up"}}))
    assert file.consumer_ok > 0
    file.touch()
    health = Health.read(path)
    assert (health.worker_id, health.consumer_ok) == ("w", file.consumer_ok)
    Path(path).write_text("{}")
    with pytest.raises(ReportError, match="not a kafka_jobs health file"):
        Health.read(path)


def test_metrics_without_prometheus_client_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'kafka-jobs\[metrics\]'"):
        MetricsServer(None, 9999)  # type: ignore[arg-type]


def test_a_queue_named_like_the_reports_or_commands_topic_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from django.test import override_settings

    from kafka_jobs.recurring.checks import check_recurring
    from kafka_jobs.routing import active_job_topic

    module = types.ModuleType("tests._ops_reserved_routes")
    module.routes = [  # type: ignore[attr-defined]
        active_job_topic("kafka_jobs.reports"),
        active_job_topic("kafka_jobs.commands"),
        active_job_topic("fine"),
    ]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with override_settings(KAFKA_JOBS={"ROUTES": module.__name__}):
        errors = check_recurring()
    assert [e.id for e in errors] == ["kafka_jobs.E021", "kafka_jobs.E021"]


def test_worker_processes_get_their_own_port_and_health_file(tmp_path: Path) -> None:
    from kafka_jobs.ops.health import health_files, process_health_file
    from kafka_jobs.ops.metrics import process_metrics_port

    assert [process_metrics_port(9400, i) for i in (None, 1, 2)] == [9400, 9400, 9401]
    path = str(tmp_path / "h")
    assert process_health_file(path, None) == path
    assert health_files(path) == []
    for index in (1, 2, 10):
        Path(process_health_file(path, index)).write_text("{}")
    assert health_files(path) == [f"{path}.1", f"{path}.2", f"{path}.10"]
    Path(path).write_text("{}")
    assert health_files(path) == [path]


def test_the_health_command_checks_every_worker_process(tmp_path: Path) -> None:
    import time

    from django.core.management import CommandError, call_command

    path = str(tmp_path / "h")
    for index, loop in ((1, time.time()), (2, time.time() - 300)):
        data = {"pid": index, "worker_id": f"w{index}", "loop": loop, "consumer_ok": time.time()}
        Path(f"{path}.{index}").write_text(json.dumps(data))
    with pytest.raises(CommandError, match="worker w2 has not turned") as stuck:
        call_command("kafkaworkerhealth", "--file", path, verbosity=0)
    assert stuck.value.returncode == 2


def test_consumer_state_is_not_judged_when_the_project_takes_the_statistics(tmp_path: Path) -> None:
    from kafka_jobs.ops.monitor import StatsConsumerFactory
    from tests.unit.fakes import settings

    own = HealthFile(str(tmp_path / "a"), "w")
    StatsConsumerFactory(settings(consumer={"statistics.interval.ms": 0}), own)(lambda *a: None).close()
    assert not own.tracks_consumer
    own.consumer_ok = 0.0
    own.touch()
    assert Health.read(own.path).problem(own.consumer_ok + 1000, 10_000, 60) is None

    tracked = HealthFile(str(tmp_path / "b"), "w")
    StatsConsumerFactory(settings(), tracked)(lambda *a: None).close()
    assert tracked.tracks_consumer
