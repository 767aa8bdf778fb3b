"""Fixtures shared by every test package. Keep each group in its own section."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from kafka_jobs.devbroker import DevBroker
from testproject.stack import StackError, check_reachable
from tests.helpers import unique_topic_name
from tests.postgres import DATABASE as POSTGRES_DATABASE
from tests.postgres import PostgresServer, PostgresUnavailable

POSTGRES_ALIAS = "postgres"
_POSTGRES_VARIABLES = ("KAFKA_JOBS_TEST_POSTGRES_PORT", "KAFKA_JOBS_TEST_POSTGRES_USER")

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


# --- PostgreSQL (transactional outbox) ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any) -> Iterator[PostgresServer]:
    """Start a PostgreSQL server for this test process (on first use) with the ``postgres`` alias migrated.

    The alias's PORT and USER are filled in here, and exported for subprocesses (tests/settings.py reads
    them). A machine without PostgreSQL fails the test with the fix, never skips it.
    """
    from django.core.management import call_command
    from django.db import connections

    log_path = tmp_path_factory.mktemp("postgres") / "postgres.log"
    try:
        server = PostgresServer(log_path=log_path)
    except PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    with server:
        server.create_database(POSTGRES_DATABASE)
        alias_settings = connections.settings[POSTGRES_ALIAS]
        alias_settings.update(PORT=str(server.port), USER=server.user)
        saved = {name: os.environ.get(name) for name in _POSTGRES_VARIABLES}
        os.environ["KAFKA_JOBS_TEST_POSTGRES_PORT"] = str(server.port)
        os.environ["KAFKA_JOBS_TEST_POSTGRES_USER"] = server.user
        try:
            with django_db_blocker.unblock():
                call_command("migrate", database=POSTGRES_ALIAS, verbosity=0)
                connections[POSTGRES_ALIAS].close()
            yield server
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            connections[POSTGRES_ALIAS].close()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer, django_db_blocker: Any) -> Iterator[str]:
    """Return the alias of the migrated PostgreSQL database, open to this test; its outbox is emptied after."""
    from django.db import connections

    with django_db_blocker.unblock():
        try:
            yield POSTGRES_ALIAS
        finally:
            with connections[POSTGRES_ALIAS].cursor() as cursor:
                cursor.execute("TRUNCATE kafka_jobs_outbox RESTART IDENTITY")
            connections[POSTGRES_ALIAS].close()
