"""``python -m bench.inprocess [N]``: CPU per job of the job path and of perform_later, without a broker.

Repeatable where the broker benches are noisy: N no-op jobs are encoded with the serializer and run through
``Executor.process`` (decode, build the job, connections, signals, context) on this thread, then through
the ``ObservedExecutor`` that ``runkafkaworker`` uses (the same, plus the counters of reports and metrics,
with their signal receivers connected); then N ``perform_later`` calls run with a producer whose
``produce`` only hands the message to a list. Prints microseconds of CPU per job (best of three rounds).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import confluent_kafka
import django
from confluent_kafka import Message


def _message(value: bytes, offset: int) -> Any:
    """A message as the consumer returns it: its methods are C (a Python stand-in's would cost more)."""
    try:
        return Message(topic="bench.noop6", partition=0, offset=offset, value=value)
    except TypeError as exc:  # before 2.13, confluent-kafka's Message could not be made from Python
        raise SystemExit(
            f"python -m bench.inprocess needs confluent-kafka 2.13 or later (installed: "
            f"{confluent_kafka.version()[0]}): it runs the job path on real Message objects. "
            "Upgrade it: pip install -U confluent-kafka"
        ) from exc


class _Producer:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def produce(self, messages: Any, *, sync: bool) -> None:
        self.sent.extend(messages)

    def close(self, timeout: float) -> None:
        self.sent.clear()


def _best(rounds: int, run: Any) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        count = run()
        best = min(best, (time.process_time() - started) / count * 1e6)
    return best


def main(argv: list[str]) -> None:
    """Measure and print both paths."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from kafka_jobs import producer as producer_module
    from kafka_jobs.conf import get_settings
    from kafka_jobs.execution import dedicate_thread
    from kafka_jobs.ops.executor import ObservedExecutor
    from kafka_jobs.ops.stats import JobStats
    from kafka_jobs.routing import get_routes
    from kafka_jobs.serializer import get_serializer
    from kafka_jobs.worker.executor import Executor

    from .jobs import NoopJob

    count = int(argv[0]) if argv else 20000
    dedicate_thread()  # this thread runs jobs as a worker's job thread does
    serializer = get_serializer()
    messages = [_message(serializer.dumps(NoopJob(i)), i) for i in range(count)]
    stats = JobStats()
    executors = {"job path": Executor(get_settings()), "observed": ObservedExecutor(get_settings(), stats)}
    route = get_routes().by_queue[NoopJob.queue_as]

    def owned() -> bool:
        return True

    def process(executor: Executor) -> Any:
        def run() -> int:
            for message in messages:
                executor.process(message, route, 0, owned)
            return count

        return run

    fake = _Producer()
    producer_module._instance = (os.getpid(), fake)  # type: ignore[assignment]

    def enqueue() -> int:
        fake.sent.clear()
        for i in range(count):
            NoopJob.perform_later(i)
        return count

    stats.connect()  # as the worker's monitor does
    try:
        for name, executor in executors.items():
            print(f"{name + ':':14} {_best(3, process(executor)):6.2f} us CPU per job")
    finally:
        stats.disconnect()
    try:
        print(f"perform_later: {_best(3, enqueue):6.2f} us CPU per job")
    finally:
        producer_module._instance = None  # nothing to flush at exit


if __name__ == "__main__":
    main(sys.argv[1:])
