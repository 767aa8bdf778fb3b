"""Trace propagation with the OpenTelemetry SDK's in-memory exporter: perform_later writes the W3C trace
context into the headers, the worker's executor continues it in a consumer span on the job's own thread."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafka_jobs import Job
from kafka_jobs.backends.kafka import KafkaBackend
from kafka_jobs.conf import get_settings
from kafka_jobs.ops.executor import ObservedExecutor
from kafka_jobs.ops.stats import JobStats
from kafka_jobs.routing import active_job_topic
from kafka_jobs.serializer import JsonSerializer
from tests.unit.fakes import FakeMessage

ROUTE = active_job_topic("default")
EXPORTER = InMemorySpanExporter()
job_spans: list[tuple[Any, str]] = []  # (span context seen inside perform, thread name)


class TracedJob(Job):
    """Records the span current inside perform, and opens a span of its own."""

    queue_as = "default"
    job_name = "unit.TracedJob"

    def perform(self, fail: bool = False) -> None:
        with trace.get_tracer("job").start_as_current_span("inside the job") as span:
            job_spans.append((span.get_span_context(), threading.current_thread().name))
        if fail:
            raise RuntimeError("traced failure")


PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture(autouse=True)
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The SDK's provider, as trace.set_tracer_provider() sets it, for one test only.

    set_tracer_provider() works once per process and cannot be undone: the other tests in this process
    must see no provider (tracing off), as a project without an SDK does.
    """
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", PROVIDER)
    EXPORTER.clear()
    job_spans.clear()
    yield EXPORTER


class HeaderMessage(FakeMessage):
    def __init__(self, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        super().__init__("default", 3, 42, value)
        self._headers = headers

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers


def spans(name: str) -> list[ReadableSpan]:
    return [span for span in EXPORTER.get_finished_spans() if span.name == name]


def enqueue_in_request(**kwargs: Any) -> tuple[list[tuple[str, bytes]], bytes, Any]:
    """Prepare a TracedJob inside a "request" span; return its headers, payload and the request's span context."""
    backend = KafkaBackend("kafka")
    with trace.get_tracer("web").start_as_current_span("request") as request:
        prepared = backend.prepare(TracedJob(**kwargs), dt.datetime.now(dt.UTC))
    assert prepared.message is not None and prepared.message.headers is not None
    return prepared.message.headers, prepared.payload, request.get_span_context()


def run_on_thread(executor: ObservedExecutor, message: Any) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(executor.process(message, ROUTE, 0, lambda: True)))
    thread.name = "job-thread"
    thread.start()
    thread.join(10)
    return result[0]


def test_perform_later_writes_w3c_trace_context_from_a_producer_span() -> None:
    headers, _payload, request = enqueue_in_request()
    names = dict(headers)
    traceparent = names["traceparent"].decode()
    assert traceparent.startswith(f"00-{request.trace_id:032x}-")
    (send,) = spans("send default")
    assert send.kind is trace.SpanKind.PRODUCER
    assert send.parent is not None and send.parent.span_id == request.span_id
    assert traceparent.split("-")[2] == f"{send.context.span_id:016x}"
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == "default"


def test_worker_runs_the_job_in_a_consumer_span_continuing_the_trace_on_the_job_thread() -> None:
    headers, payload, request = enqueue_in_request()
    executor = ObservedExecutor(get_settings(), JobStats())
    outcome = run_on_thread(executor, HeaderMessage(payload, headers))

    assert outcome.verdict.value == "done"
    (process,) = spans("process default")
    (send,) = spans("send default")
    assert process.kind is trace.SpanKind.CONSUMER
    assert process.context.trace_id == request.trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    attributes = process.attributes
    assert attributes is not None
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.partition.id"] == "3"
    assert attributes["messaging.kafka.offset"] == 42
    assert attributes["messaging.consumer.group.name"] == get_settings().group_id
    assert attributes["messaging.message.id"] == dict(headers)["kj-id"].decode()
    assert attributes["kafka_jobs.outcome"] == "done"
    (inside,) = spans("inside the job")
    assert inside.parent is not None and inside.parent.span_id == process.context.span_id
    assert job_spans[0][1] == "job-thread"


def test_a_failed_run_marks_its_span_with_the_error() -> None:
    headers, payload, _request = enqueue_in_request(fail=True)
    outcome = run_on_thread(ObservedExecutor(get_settings(), JobStats()), HeaderMessage(payload, headers))
    assert outcome.verdict.value == "retry"
    (process,) = spans("process default")
    assert process.status.status_code is trace.StatusCode.ERROR
    assert [event.name for event in process.events] == ["exception"]


def test_tracing_off_writes_no_headers_and_no_spans() -> None:
    with override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "TRACING": False}):
        headers, payload, _request = enqueue_in_request()
        assert "traceparent" not in dict(headers)
        run_on_thread(ObservedExecutor(get_settings(), JobStats()), HeaderMessage(payload, headers))
    assert spans("send default") == [] and spans("process default") == []


def test_message_without_trace_context_starts_a_new_trace() -> None:
    payload = JsonSerializer().dumps(TracedJob())
    run_on_thread(ObservedExecutor(get_settings(), JobStats()), HeaderMessage(payload, []))
    (process,) = spans("process default")
    assert process.parent is None


def test_without_a_tracer_provider_nothing_is_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    headers, _payload, _request = enqueue_in_request()
    assert "traceparent" not in dict(headers)
    assert not ObservedExecutor(get_settings(), JobStats()).tracing
