"""Worker reports and queue commands: JSON round trips, the gone rule, confirmations."""

from __future__ import annotations

import datetime as dt

import pytest

from kafka_jobs.exceptions import ReportError
from kafka_jobs.ops import (
    Counters,
    PartitionReport,
    QueueCommand,
    RecentError,
    Retrying,
    RunningJob,
    WorkerReport,
    WorkerState,
    confirmations,
)
from kafka_jobs.ops.report import MAX_ERROR_TEXT, error_text

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def make_report(**changes: object) -> WorkerReport:
    report = WorkerReport(
        worker_id="host:1:abcd",
        status="running",
        host="host",
        pid=1,
        started_at=NOW - dt.timedelta(minutes=5),
        reported_at=NOW,
        interval=5.0,
        group_id="g",
        queues=["default"],
        concurrency=2,
        partitions=[
            PartitionReport(
                "default",
                "default",
                0,
                committed=3,
                position=7,
                end=10,
                lag=7,
                buffered=4,
                running=1,
                paused=True,
                held=False,
                retrying=[Retrying(3, "tests.jobs.Fail", "id1", 2, "ValueError: no", NOW)],
            )
        ],
        running=[RunningJob("tests.jobs.Slow", "id2", "default", 0, 3, NOW)],
        counters=Counters(succeeded=5, failed=2, retried=2),
        queue_counters={"default": Counters(succeeded=5)},
        recent_errors=[RecentError(NOW, "tests.jobs.Fail", "id1", "default", 0, 3, "ValueError: no", "retry")],
        rss_bytes=1234,
        paused_queues=[],
        commands={"default": "c1"},
    )
    return WorkerReport(**{**report.__dict__, **changes})  # type: ignore[arg-type]


def test_report_survives_a_json_round_trip() -> None:
    report = make_report()
    assert WorkerReport.from_json(report.to_json()) == report
    assert report.total_lag == 7


def test_report_ignores_unknown_keys_from_newer_workers() -> None:
    data = make_report().to_dict()
    data["something_new"] = 1
    data["counters"]["new_counter"] = 3
    assert WorkerReport.from_dict(data) == make_report()


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"not json",
        b"[]",
        b'{"worker_id": "x"}',
        b'{"worker_id":"x","status":"running","host":"h","pid":1,"started_at":"nope","reported_at":"nope","interval":5,"group_id":"g"}',
    ],
)
def test_bad_report_raises_report_error(raw: bytes | None) -> None:
    with pytest.raises(ReportError):
        WorkerReport.from_json(raw)


def test_a_worker_silent_for_three_intervals_is_gone() -> None:
    report = make_report()
    assert report.state(NOW + dt.timedelta(seconds=15)) is WorkerState.RUNNING
    assert report.state(NOW + dt.timedelta(seconds=15.1)) is WorkerState.GONE
    assert make_report(status="stopped").state(NOW + dt.timedelta(days=1)) is WorkerState.STOPPED
    assert make_report(status="stopping").state(NOW) is WorkerState.STOPPING


def test_error_text_is_bounded() -> None:
    assert error_text(ValueError("x")) == "ValueError: x"
    assert error_text(KeyError()) == "KeyError"
    assert len(error_text(ValueError("y" * 2000))) == MAX_ERROR_TEXT


def test_command_round_trip_and_confirmations() -> None:
    command = QueueCommand("default", "pause", "c1", NOW, "admin")
    assert QueueCommand.from_json(command.to_json()) == command
    with pytest.raises(ReportError):
        QueueCommand.from_json(b'{"action": "explode"}')
    reports = [
        make_report(),
        make_report(worker_id="b", commands={}),
        make_report(worker_id="c", queues=["other"]),
        make_report(worker_id="d", status="stopped"),
    ]
    assert confirmations(command, reports, NOW) == (["host:1:abcd"], ["b"])
