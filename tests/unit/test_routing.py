"""The routes DSL: validation naming the queue, the route table, the queue prefix, unrouted queues."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from kafka_jobs.conf import Backoff
from kafka_jobs.exceptions import ConfigurationError, InvalidJob, UnroutedQueue
from kafka_jobs.job import Job
from kafka_jobs.routing import (
    DeadLetterQueue,
    Route,
    RouteTable,
    VirtualPartitions,
    active_job_topic,
    get_routes,
    load_routes,
)
from tests.helpers import param_id

_counter = itertools.count()


@pytest.fixture
def routes_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a routes module with the given source; return its importable name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"kj_routes_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def key_of(job: Job) -> Any:
    return job.kwargs.get("tenant")


# active_job_topic ----------------------------------------------------------------------------------------


def test_active_job_topic_defaults() -> None:
    route = active_job_topic("default")

    assert route == Route(queue="default", topic="default")
    assert route.partitions == 1
    assert route.dead_letter_queue is None
    assert route.virtual_partitions is None
    assert route.backoff is None


def test_dicts_are_coerced_into_option_objects() -> None:
    route = active_job_topic(
        "orders",
        partitions=3,
        config={"retention.ms": "1000"},
        backoff={"initial": 0.5, "maximum": 2.0},
        dead_letter_queue={"topic": "orders.dead"},
        virtual_partitions={"key": key_of, "max_lanes": 3},
    )

    assert route.backoff == Backoff(0.5, 2.0)
    assert route.dead_letter_queue == DeadLetterQueue("orders.dead", max_retries=3)
    assert route.virtual_partitions == VirtualPartitions(key_of, 3)
    assert route.config == {"retention.ms": "1000"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"partitions": 0}, "partitions must be an int >= 1"),
        ({"partitions": True}, "partitions must be an int >= 1"),
        ({"partitions": "3"}, "partitions must be an int >= 1"),
        ({"replication_factor": 0}, "replication_factor must be an int >= 1"),
        ({"dead_letter_queue": {"topic": "bad topic"}}, "not a valid topic name"),
        ({"dead_letter_queue": {"topic": "ok", "max_retries": -1}}, "max_retries must be an int >= 0"),
        ({"dead_letter_queue": {"topic": "ok", "max_retries": True}}, "max_retries must be an int >= 0"),
        ({"dead_letter_queue": {"topic": "ok", "retries": 1}}, r"no option\(s\) \['retries'\]"),
        ({"dead_letter_queue": {"max_retries": 1}}, "topic"),
        ({"dead_letter_queue": "orders.dead"}, "expected DeadLetterQueue or a dict"),
        ({"virtual_partitions": {"key": "tenant"}}, "key must be callable"),
        ({"virtual_partitions": {"key": key_of, "max_lanes": 0}}, "max_lanes must be an int >= 1"),
        ({"virtual_partitions": {"key": key_of, "max_lanes": True}}, "max_lanes must be an int >= 1"),
        ({"backoff": {"initial": 5, "maximum": 1}}, "maximum"),
        ({"backoff": {"INITIAL": 1}}, "no option"),
    ],
    ids=param_id,
)
def test_invalid_option_is_an_error_naming_the_queue(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        active_job_topic("orders", **kwargs)

    assert str(info.value).startswith("active_job_topic('orders'): ")


@pytest.mark.parametrize("queue", ["", "has space", "a/b", "x" * 201, None])
def test_invalid_queue_name_is_an_error_naming_it(queue: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"active_job_topic\(.*\): the queue name"):
        active_job_topic(queue)


# RouteTable and the prefix -------------------------------------------------------------------------------


def test_duplicate_queue_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="Queue 'a' is routed twice"):
        RouteTable([active_job_topic("a"), active_job_topic("b"), active_job_topic("a", partitions=2)])


def test_routes_must_be_active_job_topic_entries() -> None:
    with pytest.raises(ConfigurationError, match="active_job_topic"):
        RouteTable([active_job_topic("a"), "b"])  # type: ignore[list-item]


def test_prefix_is_applied_to_topic_and_dead_letter_topic() -> None:
    table = RouteTable([active_job_topic("dlq", dead_letter_queue={"topic": "dlq.dead"}), active_job_topic("b")], "t1.")

    assert table.by_queue["dlq"].topic == "t1.dlq"
    assert table.by_queue["dlq"].dead_letter_queue == DeadLetterQueue("t1.dlq.dead", 3)
    assert set(table.by_topic) == {"t1.dlq", "t1.b"}
    assert table.topic_for("b") == "t1.b"
    assert [route.queue for route in table] == ["dlq", "b"]
    assert len(table) == 2


def test_without_prefix_the_topic_is_the_queue() -> None:
    table = RouteTable([active_job_topic("jobs")])

    assert table.topic_for("jobs") == "jobs"
    assert table.by_topic["jobs"].queue == "jobs"


def test_topic_for_unrouted_queue_raises_unrouted_queue() -> None:
    table = RouteTable([active_job_topic("jobs")], "p.")

    with pytest.raises(UnroutedQueue, match="Queue 'typo' is not declared") as info:
        table.topic_for("typo")

    assert "REQUIRE_ROUTE" in str(info.value)
    assert isinstance(info.value, InvalidJob)


def test_topic_for_unrouted_queue_is_allowed_when_routes_are_not_required() -> None:
    table = RouteTable([active_job_topic("jobs")], "p.")

    assert table.topic_for("adhoc", require_route=False) == "p.adhoc"


def test_select_returns_routes_in_order_and_names_unknown_queues() -> None:
    table = RouteTable([active_job_topic("a"), active_job_topic("b")])

    assert [route.queue for route in table.select(["b", "a"])] == ["b", "a"]
    with pytest.raises(ConfigurationError, match=r"\['c'\] are not routed"):
        table.select(["a", "c"])


# Loading the routes module -------------------------------------------------------------------------------


def test_get_routes_loads_the_configured_module_with_the_prefix() -> None:
    with override_settings(KAFKA_JOBS={"ROUTES": "tests.kafka_routes", "QUEUE_PREFIX": "ci-7."}):
        routes = get_routes()

        assert routes.topic_for("default") == "ci-7.default"
        assert routes.by_queue["dlq0"].dead_letter_queue == DeadLetterQueue("ci-7.dlq0.dead", 0)
        assert routes.by_queue["default"].partitions == 2


def test_get_routes_is_rebuilt_when_settings_change() -> None:
    with override_settings(KAFKA_JOBS={"ROUTES": "tests.kafka_routes", "QUEUE_PREFIX": "one."}):
        assert get_routes().topic_for("single") == "one.single"
    with override_settings(KAFKA_JOBS={"ROUTES": "tests.kafka_routes", "QUEUE_PREFIX": "two."}):
        assert get_routes().topic_for("single") == "two.single"


def test_missing_routes_module_names_the_setting() -> None:
    with (
        override_settings(KAFKA_JOBS={"ROUTES": "tests.no_such_routes"}),
        pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['ROUTES'\] names the module 'tests.no_such_routes'"),
    ):
        get_routes()


def test_missing_routes_package_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['ROUTES'\]"):
        load_routes("no_such_package.kafka_routes")


def test_import_error_inside_the_routes_module_names_the_missing_module(routes_module: Callable[[str], str]) -> None:
    # The missing module's name is a prefix of the routes module's name: still not "ROUTES is wrong".
    name = routes_module("import kj_route\nroutes = []\n")

    with pytest.raises(
        ConfigurationError, match="failed to import: ModuleNotFoundError: No module named 'kj_route'"
    ) as raised:
        load_routes(name)
    assert "does not exist" not in str(raised.value)
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize("source", ["", "routes = None\n", "routes = 'default'\n"])
def test_routes_module_without_a_routes_list_is_an_error(routes_module: Callable[[str], str], source: str) -> None:
    name = routes_module(source)

    with pytest.raises(ConfigurationError, match=f"{name} must define routes"):
        load_routes(name)


def test_routes_module_may_use_a_tuple(routes_module: Callable[[str], str]) -> None:
    name = routes_module(
        """
        from kafka_jobs.routing import active_job_topic
        routes = (active_job_topic("x"), active_job_topic("y", partitions=4))
        """
    )

    assert sorted(load_routes(name, "p-").by_topic) == ["p-x", "p-y"]
