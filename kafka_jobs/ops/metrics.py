"""Prometheus metrics of one worker (``runkafkaworker --metrics-port``), read from what the monitor keeps.

Nothing is updated on the job path for Prometheus: a collector turns the job threads' plain counters
(``JobStats``) and the latest report into metric families when the endpoint is scraped.
Needs the ``prometheus_client`` library: ``pip install 'kafka-jobs[metrics]'``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from .stats import DURATION_BUCKETS

if TYPE_CHECKING:
    from .monitor import WorkerMonitor

DEFAULT_METRICS_HOST = "127.0.0.1"
# The histogram's "le" labels, the same for every queue.
_BOUNDS = (*map(str, DURATION_BUCKETS), "+Inf")
_COUNTERS = (
    ("succeeded", "Jobs that returned"),
    ("failed", "Failed job runs, whatever followed"),
    ("retried", "Failed job runs that will be retried"),
    ("discarded", "Jobs discarded (discard_on) and undecodable messages skipped"),
    ("dead_lettered", "Jobs written to a dead letter queue"),
)


def process_metrics_port(port: int, index: int | None) -> int:
    """Return the metrics port of worker process ``index`` (1..N) of ``--processes``: ``port + index - 1``."""
    return port if index is None else port + index - 1


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ConfigurationError(
            "--metrics-port needs the prometheus_client library, which is not installed. Install it with "
            "pip install 'kafka-jobs[metrics]' (or pip install prometheus_client), or drop --metrics-port."
        ) from exc
    return prometheus_client


class WorkerCollector:
    """A prometheus_client collector of one worker's job counts, durations, lag, pauses and running jobs."""

    def __init__(self, monitor: WorkerMonitor) -> None:
        self.monitor = monitor
        self.core = _prometheus().core

    def describe(self) -> list[Any]:
        """Nothing is described up front (the families depend on the queues seen)."""
        return []

    def collect(self) -> Iterator[Any]:
        """Return the metric families of the current state."""
        core = self.core
        monitor = self.monitor
        queue_of = monitor.queue_of_topic()
        topics = sorted(monitor.stats.topics.items())
        for name, text in _COUNTERS:
            family = core.CounterMetricFamily(f"kafka_jobs_jobs_{name}", f"{text}.", labels=["queue"])
            for topic, stats in topics:
                family.add_metric([queue_of.get(topic, topic)], getattr(stats, name))
            yield family
        durations = core.HistogramMetricFamily(
            "kafka_jobs_job_duration_seconds", "Time to run one message's job, by queue.", labels=["queue"]
        )
        for topic, stats in topics:
            counts = list(itertools.accumulate(stats.buckets))
            durations.add_metric(
                [queue_of.get(topic, topic)], list(zip(_BOUNDS, counts, strict=True)), stats.duration_sum
            )
        yield durations
        running = core.GaugeMetricFamily("kafka_jobs_running_jobs", "Jobs running now, by queue.", labels=["queue"])
        per_queue: dict[str, int] = dict.fromkeys(queue_of.values(), 0)
        for message, _since in list(monitor.stats.running.values()):
            queue = queue_of.get(message.topic(), message.topic())
            per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue, count in sorted(per_queue.items()):
            running.add_metric([queue], count)
        yield running
        yield from self._partitions()

    def _partitions(self) -> Iterator[Any]:
        core = self.core
        labels = ["queue", "topic", "partition"]
        lag = core.GaugeMetricFamily(
            "kafka_jobs_partition_lag", "Messages not yet done (end offset - committed offset).", labels=labels
        )
        paused = core.GaugeMetricFamily(
            "kafka_jobs_partition_paused", "1 while the partition is not fetched (any reason).", labels=labels
        )
        held = core.GaugeMetricFamily(
            "kafka_jobs_partition_held", "1 while the partition's queue is paused by an operator.", labels=labels
        )
        retrying = core.GaugeMetricFamily(
            "kafka_jobs_partition_retrying", "Jobs of the partition waiting to be retried.", labels=labels
        )
        report = self.monitor.last_report
        for partition in report.partitions if report is not None else []:
            values = [partition.queue, partition.topic, str(partition.partition)]
            if partition.lag is not None:
                lag.add_metric(values, partition.lag)
            paused.add_metric(values, int(partition.paused))
            held.add_metric(values, int(partition.held))
            retrying.add_metric(values, len(partition.retrying))
        yield from (lag, paused, held, retrying)


class MetricsServer:
    """The worker's metrics endpoint on ``host:port`` (a thread of prometheus_client's HTTP server)."""

    def __init__(self, monitor: WorkerMonitor, port: int, host: str = DEFAULT_METRICS_HOST) -> None:
        prometheus = _prometheus()
        self.registry = prometheus.CollectorRegistry()
        self.registry.register(WorkerCollector(monitor))
        prometheus.ProcessCollector(registry=self.registry)
        self.host, self.port = host, port
        try:
            self._server, self._thread = prometheus.start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigurationError(
                f"Could not serve metrics on {host}:{port}: {exc}. Choose another --metrics-port."
            ) from exc

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
