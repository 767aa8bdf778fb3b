"""Routes that leave most test jobs' queues unrouted: a worker started with them shows kafka_jobs.W001."""

from kafka_jobs.routing import active_job_topic

routes = [active_job_topic("single", partitions=1)]
