"""OpenTelemetry trace propagation: ``perform_later`` writes the W3C trace context into the message headers,
and the worker runs each job in a consumer span that continues it, on the job's own thread.

Active when ``opentelemetry-api`` is installed (``pip install 'kafka-jobs[otel]'``), ``KAFKA_JOBS['TRACING']``
is true (the default) and the project has set a tracer provider (an OpenTelemetry SDK): until then nothing
would be recorded, so nothing is done and the job path costs one check. Attributes follow the
OpenTelemetry messaging semantic conventions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from typing import Any

from ..conf import get_settings

TRACER_NAME = "kafka_jobs"
_UNKNOWN = object()
SYSTEM = "kafka"


@cache
def _api() -> Any:
    """Return the ``opentelemetry`` API modules, or None when not installed."""
    try:
        from opentelemetry import context, propagate, trace
    except ImportError:
        return None
    return context, propagate, trace


def enabled() -> bool:
    """True if trace context is propagated: the API is installed, TRACING is on and a tracer provider is set."""
    api = _api()
    if api is None or not get_settings().tracing:
        return False
    trace = api[2]
    # The global set_tracer_provider() fills (read directly: get_tracer_provider() costs a microsecond a call).
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    return provider is not None and not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


class _HeaderGetter:
    """Reads a carrier of Kafka headers, a list of (name, bytes) pairs, for the propagator."""

    def get(self, carrier: list[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [bytes(v).decode("utf-8", "replace") for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: list[tuple[str, bytes]]) -> list[str]:
        return [k for k, _v in carrier]


_GETTER = _HeaderGetter()


def _message_attributes(topic: str, operation: str, job_name: str, job_id: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
        "messaging.message.id": job_id,
        "kafka_jobs.job": job_name,
    }


def producer_headers(
    topic: str, job_name: str, job_id: str, key: bytes | None, partition: int | None
) -> list[tuple[str, bytes]]:
    """Return the trace headers of a job's message, from a PRODUCER span ``send <topic>`` (empty if disabled)."""
    if not enabled():
        return []
    _context, propagate, trace = _api()
    attributes = _message_attributes(topic, "send", job_name, job_id)
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    tracer = trace.get_tracer(TRACER_NAME)
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span(f"send {topic}", kind=trace.SpanKind.PRODUCER, attributes=attributes):
        propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


@contextlib.contextmanager
def consumer_span(message: Any, job_name: str, job_id: str, group_id: str) -> Iterator[Any]:
    """Run the block in a CONSUMER span ``process <topic>`` continuing the message's trace context.

    Yields the span (None when tracing is disabled), so the caller can record the outcome.
    """
    if not enabled():
        yield None
        return
    _context, propagate, trace = _api()
    parent = propagate.extract(message.headers() or [], getter=_GETTER)
    topic = message.topic()
    attributes = _message_attributes(topic, "process", job_name, job_id)
    attributes.update(
        {
            "messaging.destination.partition.id": str(message.partition()),
            "messaging.kafka.offset": message.offset(),
            "messaging.consumer.group.name": group_id,
        }
    )
    key = message.key()
    if key is not None:
        attributes["messaging.kafka.message.key"] = bytes(key).decode("utf-8", "replace")
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"process {topic}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_outcome(span: Any, error: BaseException | None, outcome: str) -> None:
    """Mark ``span`` with how the run ended (an error status for a failed run)."""
    if span is None:
        return
    _context, _propagate, trace = _api()
    span.set_attribute("kafka_jobs.outcome", outcome)
    if error is not None:
        span.record_exception(error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
