"""Routes of the test project; topics get a per-test prefix (KAFKA_JOBS_QUEUE_PREFIX)."""

from kafka_jobs.routing import active_job_topic

routes = [
    active_job_topic("default", partitions=2),
    active_job_topic("single", partitions=1),
    active_job_topic("dlq", partitions=1, dead_letter_queue={"topic": "dlq.dead", "max_retries": 1}),
    active_job_topic("dlq0", partitions=1, dead_letter_queue={"topic": "dlq0.dead", "max_retries": 0}),
    active_job_topic("wide", partitions=6),
]
