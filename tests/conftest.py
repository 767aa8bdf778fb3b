"""Fixtures shared by every test package. Keep each group in its own section."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from confluent_kafka.admin import AdminClient

from kafka_jobs.devbroker import DevBroker
from tests.helpers import unique_topic_name

# --- Kafka broker and topics ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return ``bootstrap.servers`` of the test broker.

    ``KAFKA_BOOTSTRAP_SERVERS`` from the environment if set (any Kafka-compatible cluster), otherwise an
    embedded Tansu broker started for this session on a free loopback port. Its log is kept under
    pytest's base temporary directory, for post-mortems.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if existing:
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
