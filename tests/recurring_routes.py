"""The test routes plus one recurring schedule: a TickJob every second (for the recurring integration tests)."""

import datetime as dt

from kafka_jobs.recurring import recurring_job
from tests.kafka_routes import routes

__all__ = ["recurring_jobs", "routes"]

recurring_jobs = [
    recurring_job("every-second", "tests.jobs.TickJob", every=dt.timedelta(seconds=1), args=["every-second"]),
]
