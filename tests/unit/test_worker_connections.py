"""Job threads close stale database connections around each job, and skip the check while none is open."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from kafka_jobs.worker import connections as module


def on_new_thread(body: Callable[[], Any]) -> Any:
    """Run ``body`` on a fresh thread (its own connections and state), returning its result or raising."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = body()
        except BaseException as exc:  # re-raised on the test's thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of Django's close_old_connections made by the job threads' version."""
    calls: list[int] = []
    real = module.django_close_old_connections

    def counted() -> None:
        calls.append(1)
        real()

    monkeypatch.setattr(module, "django_close_old_connections", counted)
    return calls


def test_a_thread_without_open_connections_checks_once_then_skips(checks: list[int]) -> None:
    def body() -> None:
        for _ in range(5):
            module.close_old_connections()

    on_new_thread(body)

    assert len(checks) == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_opened_by_a_job_is_closed_as_before_with_conn_max_age_0(
    checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)

    def body() -> list[bool]:
        module.close_old_connections()  # unknown state: checked, nothing open
        module.close_old_connections()  # skipped
        connections["default"].ensure_connection()  # a job queries the database
        opened = connections["default"].connection is not None
        module.close_old_connections()  # after the job: expired (CONN_MAX_AGE = 0), so closed
        closed = connections["default"].connection is None
        module.close_old_connections()  # clean again: skipped
        return [opened, closed]

    assert on_new_thread(body) == [True, True]
    assert len(checks) == 2


@pytest.mark.django_db(transaction=True)
def test_a_persistent_connection_is_checked_around_every_job(
    checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", None)

    def body() -> bool:
        connections["default"].ensure_connection()
        for _ in range(3):
            module.close_old_connections()
        return connections["default"].connection is not None

    assert on_new_thread(body) is True  # kept open: not expired
    assert len(checks) == 3
