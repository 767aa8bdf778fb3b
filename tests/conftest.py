"""Fixtures shared by every test package. Keep each group in its own section."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from confluent_kafka.admin import AdminClient

from kafka_jobs.devbroker import DevBroker
from testproject.stack import StackError, check_reachable
from tests.helpers import unique_topic_name

# --- Parallel runs (pytest-xdist) ---------------------------------------------------------------------------

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse test ids that hold a memory address, in every run, not only in parallel ones.

    Why: ``make test`` runs the suite in several pytest-xdist processes, which must all collect the same
    test ids; an id built with ``repr`` of a function or plain object differs in each process, and xdist
    then refuses the whole run with a long diff. Here the error names the tests and the fix.
    """
    unstable = [item.nodeid for item in items if _ADDRESS.search(item.nodeid)]
    if unstable:
        raise pytest.UsageError(
            "These test ids contain a memory address, which differs between pytest-xdist processes:\n  "
            + "\n  ".join(unstable)
            + "\nGive their parametrize ids without one, e.g. ids=tests.helpers.param_id instead of ids=repr."
        )


# --- Kafka broker and topics ---------------------------------------------------------------------------


def pytest_report_header() -> str:
    """Say which broker the integration tests use, so a run against a real cluster is never a surprise."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if existing:
        return f"kafka: the cluster at KAFKA_BOOTSTRAP_SERVERS={existing} (unset it to use embedded brokers)"
    return "kafka: an embedded Tansu broker per test process, started when a test first needs one"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return ``bootstrap.servers`` of the test broker.

    ``KAFKA_BOOTSTRAP_SERVERS`` from the environment if set (any Kafka-compatible cluster), otherwise an
    embedded Tansu broker started for this session on a free loopback port. Its log is kept under
    pytest's base temporary directory, for post-mortems.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if existing:
        # One clear failure for the session, instead of a ten-second timeout in every integration test.
        unreachable = None
        try:
            check_reachable(existing)
        except StackError as error:
            unreachable = str(error)
        if unreachable:
            pytest.fail(unreachable, pytrace=False)
        yield existing
        return
    log_path = tmp_path_factory.mktemp("devbroker") / "tansu.log"
    with DevBroker(log_path=log_path) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """Return an ``AdminClient`` connected to the test broker."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Return ``make(label="") -> str`` giving a new topic name that mentions this test.

    Topics are never deleted between tests (deleting one under a fetching consumer crashes the client on
    Tansu), so every test uses names of its own.
    """
    return partial(unique_topic_name, request.node.name)
