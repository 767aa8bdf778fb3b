"""Which queues are Kafka topics of jobs (``KAFKA_JOBS["ROUTES"]`` points here)."""

from kafka_jobs.routing import active_job_topic

routes = [
    # Three partitions: up to three jobs of this queue run in parallel, each partition in order. A job that
    # still fails after two retries goes to the dead letter queue (shown in the admin's dashboard).
    active_job_topic("default", partitions=3, dead_letter_queue={"topic": "default.dead", "max_retries": 2}),
]
