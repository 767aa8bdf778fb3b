"""The test routes plus one recurring schedule: a TickJob every second (for the recurring integration tests)."""

import datetime as dt

from kafka_jobs.recurring import recurring_job
from tests.kafka_routes import routes

__all__ = ["recurring_jobs", "routes"]

# A tick more than 3 s late counts as missed (default 60 s), so a test can see missed ticks collapse.
recurring_jobs = [
    recurring_job("every-second", "tests.jobs.TickJob", every=dt.timedelta(seconds=1), args=["every-second"], grace=3),
]
