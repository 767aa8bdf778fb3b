"""A routes module with an invalid cron expression: importing it raises ConfigurationError."""

from kafka_jobs.recurring import recurring_job
from tests.kafka_routes import routes

__all__ = ["recurring_jobs", "routes"]

recurring_jobs = [recurring_job("nightly", "tests.jobs.TickJob", cron="every day at 3")]
