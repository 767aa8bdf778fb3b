"""Joining worker reports into the overview, queues and workers pages, without a broker."""

from __future__ import annotations

import datetime as dt

from kafka_jobs.dashboard.fleet import build_fleet
from kafka_jobs.ops import Counters, QueueCommand, RecentError, Retrying, RunningJob, WorkerState
from kafka_jobs.routing import RouteTable, active_job_topic
from tests.dashboard_fakes import partition, report

NOW = dt.datetime.now(dt.UTC)
ROUTES = RouteTable([active_job_topic("default", partitions=2), active_job_topic("mail", partitions=1)])


def error(at_seconds_ago: float, topic: str = "default", part: int = 0, text: str = "E: boom") -> RecentError:
    return RecentError(NOW - dt.timedelta(seconds=at_seconds_ago), "app.Job", "id", topic, part, 7, text, "retry")


def test_each_partition_is_described_by_its_live_owner_and_missing_ones_are_unassigned() -> None:
    first = report("a:1:x", partitions=[partition(number=0, lag=5, held=True, paused=True)])
    gone = report("b:2:y", age=60, partitions=[partition(number=1, lag=99)])

    fleet = build_fleet([first, gone], ROUTES, {})

    default, mail = fleet.queues
    assert [(p.partition, p.state, p.worker_id) for p in default.partitions] == [
        (0, "held", "a:1:x"),
        (1, "unassigned", None),  # its only reporter is gone
    ]
    assert [p.state for p in mail.partitions] == ["unassigned"]
    assert (default.lag, fleet.lag) == (5, 5)
    assert [w.state for w in fleet.workers] == [WorkerState.RUNNING, WorkerState.GONE]
    assert [w.report.worker_id for w in fleet.live] == ["a:1:x"]


def test_the_latest_report_of_a_partition_wins_after_a_rebalance() -> None:
    old = report("a:1:x", age=4, partitions=[partition(number=0, lag=50)])
    new = report("b:2:y", age=1, partitions=[partition(number=0, lag=3)])

    (default, _mail) = build_fleet([new, old], ROUTES, {}).queues

    assert (default.partitions[0].worker_id, default.lag) == ("b:2:y", 3)


def test_retrying_and_last_error_per_partition() -> None:
    retry = Retrying(7, "app.Job", "id", 2, "E: boom", NOW + dt.timedelta(seconds=3))
    worker = report(
        "a:1:x",
        partitions=[partition(number=0, retrying=[retry], paused=True), partition(number=1)],
        recent_errors=[error(30, text="E: older"), error(5, text="E: newest"), error(10, part=1)],
    )

    fleet = build_fleet([worker], ROUTES, {})

    zero, one = fleet.queues[0].partitions
    assert zero.state == "retrying" and fleet.queues[0].retrying == 1
    assert zero.last_error is not None and zero.last_error.error == "E: newest"
    assert one.last_error is not None and one.last_error.partition == 1
    assert [e.error for _w, e in fleet.recent_errors] == ["E: newest", "E: boom", "E: older"]


def test_a_paused_queue_lists_the_workers_that_confirmed_and_those_that_have_yet_to() -> None:
    command = QueueCommand("default", "pause", "c1", NOW, "admin")
    confirmed = report("a:1:x", commands={"default": "c1"}, paused_queues=["default"])
    behind = report("b:2:y", commands={})
    other_queue = report("c:3:z", queues=["mail"])

    fleet = build_fleet([confirmed, behind, other_queue], ROUTES, {"default": command})

    default, mail = fleet.queues
    assert default.paused and (default.confirmed, default.pending, default.consumers) == (["a:1:x"], ["b:2:y"], 2)
    assert not mail.paused and fleet.paused_queues == [default]


def test_totals_add_up_the_live_workers_only() -> None:
    busy = report(
        "a:1:x",
        counters=Counters(succeeded=10, failed=2, dead_lettered=1),
        running=[RunningJob("app.Job", "j1", "default", 0, 3, NOW)],
    )
    stopped = report("b:2:y", status="stopped", counters=Counters(succeeded=1000))

    fleet = build_fleet([busy, stopped], ROUTES, {})

    assert fleet.counters == Counters(succeeded=10, failed=2, dead_lettered=1)
    assert fleet.running_jobs == 1
    assert [w.state for w in fleet.workers] == [WorkerState.RUNNING, WorkerState.STOPPED]


def test_throughput_is_what_the_live_workers_reported() -> None:
    fleet = build_fleet(
        [report("a:1:x", jobs_per_second=12.5), report("b:2:y", jobs_per_second=2.0), report("c:3:z", age=60)],
        ROUTES,
        {},
    )

    assert [w.rate for w in fleet.workers] == [12.5, 2.0, 0.0]
    assert fleet.rate == 14.5
