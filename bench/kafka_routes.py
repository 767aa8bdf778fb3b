"""Routes of the benchmark: the topic shapes it measures (the scenario's prefix is applied)."""

from kafka_jobs.routing import active_job_topic

routes = [
    active_job_topic("noop1", partitions=1),
    active_job_topic("noop6", partitions=6),
    active_job_topic("latency", partitions=1),
    active_job_topic("delays", partitions=6),
    active_job_topic("cpu6", partitions=6),  # CPU-bound jobs: --processes
    active_job_topic("sleep6", partitions=6),  # jobs that wait (I/O-bound): --concurrency
]
