"""Which queues are Kafka topics of jobs (``KAFKA_JOBS["ROUTES"]`` points here)."""

from kafka_jobs.routing import active_job_topic

routes = [
    # Three partitions: up to three jobs of this queue run in parallel, each partition in order.
    active_job_topic("default", partitions=3),
]
