"""Custom job context (a tenant) carried from enqueue to perform: captured in the caller, restored around the
job on the thread that runs it, and reset afterwards, also when the job fails."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from kafka_jobs.backends.kafka import KafkaBackend
from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import ConfigurationError, EncodeError
from kafka_jobs.ops import context as job_context
from kafka_jobs.routing import active_job_topic
from kafka_jobs.serializer import JsonSerializer
from kafka_jobs.worker.executor import Executor
from tests.jobs import TENANT, TenantJob, read_records
from tests.unit.fakes import FakeMessage

ROUTE = active_job_topic("default")


@pytest.fixture(autouse=True)
def tenant_context() -> Iterator[None]:
    with override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "CONTEXT": ["tests.jobs.TENANT_CONTEXT"]}):
        yield


def payload_in(tenant: str | None, **kwargs: Any) -> bytes:
    """Prepare a TenantJob while ``tenant`` is current; return its message value."""
    token = TENANT.set(tenant)
    try:
        return KafkaBackend("kafka").prepare(TenantJob(**kwargs), dt.datetime.now(dt.UTC)).payload
    finally:
        TENANT.reset(token)


def run_on_thread(payload: bytes) -> tuple[Any, str | None]:
    """Run the message on a fresh thread (as a job thread does); return the outcome and the tenant after it."""
    result: list[Any] = []

    def main() -> None:
        outcome = Executor(get_settings()).process(FakeMessage("default", 0, 0, payload), ROUTE, 0, lambda: True)
        result.extend([outcome, TENANT.get()])

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(10)
    return result[0], result[1]


def test_the_tenant_of_the_enqueuer_is_current_in_the_job_and_reset_after(tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    payload = payload_in("acme", log=log)
    assert JsonSerializer().loads(payload).context == {"tenant": "acme"}
    outcome, after = run_on_thread(payload)
    assert outcome.verdict.value == "done"
    assert [r["tenant"] for r in read_records(log)] == ["acme"]
    assert after is None


def test_the_context_is_reset_after_a_failed_job(tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    outcome, after = run_on_thread(payload_in("acme", log=log, fail=True))
    assert outcome.verdict.value == "retry"
    assert [r["tenant"] for r in read_records(log)] == ["acme"]
    assert after is None


def test_nothing_is_carried_when_no_value_is_set(tmp_path: Path) -> None:
    payload = payload_in(None, log=str(tmp_path / "log"))
    assert b'"ctx"' not in payload


def test_a_context_that_cannot_capture_fails_the_enqueue() -> None:
    class Broken:
        key = "broken"

        def capture(self) -> Any:
            raise LookupError("no request")

        def restore(self, value: Any) -> Any: ...
        def reset(self, token: Any) -> None: ...

    broken = job_context.register_context(Broken())
    try:
        with pytest.raises(EncodeError, match="'broken' failed to capture"):
            payload_in("acme", log="x")
        with pytest.raises(ConfigurationError, match="already registered"):
            job_context.register_context(Broken())
    finally:
        job_context.unregister_context(broken)


@pytest.mark.parametrize(
    ("paths", "error"),
    [
        (["tests.jobs.no_such_thing"], "cannot be imported"),
        (["tests.jobs.TenantJob"], "is not a job context"),
        (["tests.jobs.TENANT_CONTEXT", "tests.jobs.TENANT_CONTEXT"], "the same key"),
    ],
)
def test_bad_context_settings_are_configuration_errors(paths: list[str], error: str) -> None:
    with (
        override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "CONTEXT": paths}),
        pytest.raises(ConfigurationError, match=error),
    ):
        job_context.contexts()


def test_an_envelope_whose_ctx_is_not_an_object_is_undecodable() -> None:
    from kafka_jobs.exceptions import DecodeError

    raw = b'{"v":1,"job":"x","id":"1","queue":"default","args":[],"kwargs":{},"ctx":[1]}'
    with pytest.raises(DecodeError, match="ctx must be an object"):
        JsonSerializer().loads(raw)


def test_manage_py_check_reports_a_bad_context_setting() -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with (
        override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "CONTEXT": ["tests.jobs.no_such_thing"]}),
        pytest.raises(SystemCheckError, match=r"kafka_jobs\.E030"),
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())


class Recorded:
    """A job context that records what it restores and resets, failing where told."""

    def __init__(self, key: str, log: list[str], fail: str = "") -> None:
        self.key, self.log, self.fail = key, log, fail

    def capture(self) -> Any:
        return None

    def restore(self, value: Any) -> Any:
        if self.fail == "restore":
            raise RuntimeError(f"restore {self.key}")
        self.log.append(f"restore {self.key}={value}")
        return self.key

    def reset(self, token: Any) -> None:
        self.log.append(f"reset {token}")
        if self.fail == "reset":
            raise RuntimeError(f"reset {self.key}")


@pytest.fixture
def recorded() -> Iterator[list[str]]:
    log: list[str] = []
    registered = [
        job_context.register_context(Recorded("a", log)),
        job_context.register_context(Recorded("b", log, fail="reset")),
        job_context.register_context(Recorded("c", log)),
    ]
    yield log
    for context in registered:
        job_context.unregister_context(context)


def test_every_context_is_reset_in_reverse_order_even_when_a_reset_fails(recorded: list[str]) -> None:
    with pytest.raises(RuntimeError, match="reset b"), job_context.restored({"a": 1, "b": 2, "c": 3, "tenant": None}):
        recorded.append("job")

    assert recorded == ["restore a=1", "restore b=2", "restore c=3", "job", "reset c", "reset b", "reset a"]


def test_only_the_carried_contexts_are_restored(recorded: list[str]) -> None:
    with job_context.restored({"c": 3}):
        recorded.append("job")
    with job_context.restored(None):
        recorded.append("job")

    assert recorded == ["restore c=3", "job", "reset c", "job"]


def test_a_restore_that_fails_resets_those_already_restored(recorded: list[str]) -> None:
    failing = job_context.register_context(Recorded("d", recorded, fail="restore"))
    try:
        with pytest.raises(RuntimeError, match="restore d"), job_context.restored({"a": 1, "d": 4}):
            recorded.append("job")  # never runs
    finally:
        job_context.unregister_context(failing)

    assert recorded == ["restore a=1", "reset a"]
