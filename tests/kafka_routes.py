"""Routes of the test project; topics get a per-test prefix (KAFKA_JOBS_QUEUE_PREFIX)."""

from kafka_jobs.routing import active_job_topic

routes = [
    active_job_topic("default", partitions=2),
    active_job_topic("single", partitions=1),
    active_job_topic("dlq", partitions=1, dead_letter_queue={"topic": "dlq.dead", "max_retries": 1}),
    active_job_topic("dlq0", partitions=1, dead_letter_queue={"topic": "dlq0.dead", "max_retries": 0}),
    active_job_topic("wide", partitions=6),
]


def virtual_key(envelope):
    """The virtual partition of a VirtualJob: its ``key`` argument (an int, so lanes are predictable)."""
    return envelope.args[1]


routes += [
    active_job_topic("virtual", partitions=1, virtual_partitions={"key": virtual_key, "max_lanes": 4}),
]

# Failure handling: a DLQ after three retries, and a per-route backoff (no DLQ) longer than the global one.
routes += [
    active_job_topic("retry3", partitions=1, dead_letter_queue={"topic": "retry3.dead", "max_retries": 3}),
    active_job_topic("backoff", partitions=1, backoff={"initial": 0.5, "maximum": 4.0, "exponential": True}),
]

# --- Delayed jobs and non-blocking retries (worktree delays) ---------------------------------------------------
routes += [
    active_job_topic("delayed", partitions=2),
]
routes += [
    active_job_topic(
        "delayretry",
        partitions=1,
        retry="delay",
        backoff={"initial": 1.0, "maximum": 1.0},
        dead_letter_queue={"topic": "delayretry.dead", "max_retries": 2},
    ),
]
