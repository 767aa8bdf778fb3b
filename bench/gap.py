"""(3b) The longest gap between two jobs while a backlog drains: does a refill wait for the broker?

A backlog on partition 0 of a 6-partition topic (the other 5 idle, so a fetch request for them waits at
the broker up to ``fetch.wait.max.ms``) drains through a small buffer (``MAX_BUFFERED_MESSAGES`` 100:
many refills) with ``fetch.wait.max.ms`` at 500. The probe in the no-op job records the longest time
between two consecutive jobs (issue 11: a few milliseconds, whatever ``fetch.wait.max.ms`` is).
"""

from __future__ import annotations

from . import baseline
from .env import Bench
from .jobs import NoopJob
from .payload import messages_like
from .report import Figure, Report
from .sizes import Sizes

SECTION = "gap"
GAP_GOAL = 0.02  # seconds
GAP_BUFFER = 100
GAP_FETCH_WAIT_MS = 500
QUEUE = "noop6"
WORKER_TIMEOUT = 900.0


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """A backlog on partition 0 of the 6-partition topic drains through a small buffer: the longest gap."""
    scenario = bench.scenario(SECTION)
    queue = QUEUE
    with scenario.active() as settings:
        messages = list(messages_like(NoopJob.set(queue=queue).build(0), sizes.gap_backlog))
        producer = baseline.connected_producer(settings, messages[0])
        for message in messages:
            while True:
                try:
                    producer.produce(message.topic, message.value, headers=message.headers, partition=0)
                    break
                except BufferError:
                    producer.poll(0.05)
        if producer.flush(120):
            raise RuntimeError("gap backlog: messages left undelivered")
        consumer = {**settings.consumer, "fetch.wait.max.ms": GAP_FETCH_WAIT_MS}
    group = scenario.with_group("gap")
    overrides = {"MAX_BUFFERED_MESSAGES": GAP_BUFFER, "CONSUMER": consumer}
    worker = bench.worker(group, queue, "--burst", "--concurrency", "1", overrides=overrides)
    worker.wait(WORKER_TIMEOUT)
    stats = worker.stats()
    if stats["count"] < sizes.gap_backlog:
        raise RuntimeError(f"gap worker ran {stats['count']} of {sizes.gap_backlog} jobs:\n{worker.log_tail()}")
    name = (
        f"longest gap between jobs, {sizes.gap_backlog:,} on 1 of 6p, buffer {GAP_BUFFER}, "
        f"fetch.wait.max.ms {GAP_FETCH_WAIT_MS}"
    )
    detail = {"after_job": stats.get("gap_after"), "rate": (stats["count"] - 1) / (stats["last"] - stats["first"])}
    report.add(Figure(SECTION, name, stats["longest_gap"], "s", higher_is_better=False, bound=GAP_GOAL, detail=detail))
