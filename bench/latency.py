"""(4) End-to-end latency at a steady rate: enqueue -> job start, vs raw produce -> consume + json.loads.

Both sides use kafka_jobs' producer and consumer configurations (linger.ms, fetch.wait.max.ms) and the
same envelope bytes; the send time travels in the job arguments and is compared with the wall clock.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka_jobs.producer import get_producer
from kafka_jobs.serializer import get_serializer

from . import baseline
from .env import Bench
from .jobs import LatencyJob
from .probe import read_latencies
from .report import Figure, Report
from .sizes import Sizes

SECTION = "latency"
TARGET = 2.0
QUEUE = "latency"
WARMUP_TIMEOUT = 60.0
DRAIN_TIMEOUT = 60.0


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def _paced(rate: float, seconds: float, send: Callable[[], None]) -> int:
    """Call ``send`` ``rate`` times a second for ``seconds`` (no catch-up burst after a stall); return calls."""
    count = int(rate * seconds)
    started = time.monotonic()
    for number in range(count):
        delay = started + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send()
    return count


def _wait(predicate: Callable[[], bool], timeout: float, what: str, tick: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        if tick is not None:
            tick()
        time.sleep(0.1)


def _measure(send: Callable[[str], None], received: Callable[[str], list[float]], sizes: Sizes) -> list[float]:
    """Warm up until one message arrives (the group is joined), then send at the steady rate and collect."""
    _wait(lambda: bool(received("warmup")), WARMUP_TIMEOUT, "the consumer to join", tick=lambda: send("warmup"))
    sent = _paced(sizes.latency_rate, sizes.latency_seconds, lambda: send("run"))
    _wait(lambda: len(received("run")) >= sent, DRAIN_TIMEOUT, f"{sent} messages to arrive")
    return received("run")


def _raw(bench: Bench, sizes: Sizes) -> list[float]:
    scenario = bench.scenario(f"{SECTION}-raw")
    with scenario.active() as settings:
        envelope = json.loads(get_serializer().dumps(LatencyJob(0.0, "run")))
        topic = scenario.topic(QUEUE)
        name = envelope["job"].encode()

        def message(tag: str) -> baseline.RawMessage:
            job_id = str(uuid.uuid4())
            value = json.dumps({**envelope, "id": job_id, "args": [time.time(), tag]}, separators=(",", ":"))
            return baseline.RawMessage(topic, value.encode(), [("kj-job", name), ("kj-id", job_id.encode())])

        consumer = baseline.LatencyConsumer(settings, topic)
        producer = baseline.connected_producer(settings, message("connect"))

        def send(tag: str) -> None:
            raw = message(tag)
            producer.produce(raw.topic, raw.value, headers=raw.headers)
            producer.poll(0)

        try:
            return _measure(send, lambda tag: consumer.latencies.get(tag, []), sizes)
        finally:
            consumer.stop()
            producer.flush(10)


def _kafka_jobs(bench: Bench, sizes: Sizes) -> list[float]:
    scenario = bench.scenario(SECTION)
    log = bench.workdir / "latency.log"
    worker = bench.worker(scenario, QUEUE, BENCH_LATENCY_FILE=str(log))
    try:
        with scenario.active():
            get_producer()

            def send(tag: str) -> None:
                LatencyJob.perform_later(time.time(), tag)

            return _measure(send, lambda tag: read_latencies(Path(log), tag), sizes)
    finally:
        worker.stop(30.0)


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Measure p50/p99 latency of kafka_jobs and of the raw clients at ``sizes.latency_rate``."""
    raw = _raw(bench, sizes)
    ours = _kafka_jobs(bench, sizes)
    where = f"{sizes.latency_rate:g} jobs/s for {sizes.latency_seconds:g}s"
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        report.add(
            Figure(
                SECTION,
                f"{label} enqueue->start, {where}",
                percentile(ours, fraction) * 1000,
                "ms",
                percentile(raw, fraction) * 1000,
                f"raw {label}",
                TARGET if label == "p99" else None,
                higher_is_better=False,
                detail={"samples": len(ours), "raw_samples": len(raw), "max_ms": max(ours) * 1000},
            )
        )
