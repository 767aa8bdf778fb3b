"""A routes module whose recurring schedules are invalid (a name declared twice): the worker must refuse it."""

import datetime as dt

from kafka_jobs.recurring import recurring_job
from tests.kafka_routes import routes

__all__ = ["recurring_jobs", "routes"]

recurring_jobs = [
    recurring_job("twice", "tests.jobs.TickJob", every=dt.timedelta(seconds=1), args=["a"]),
    recurring_job("twice", "tests.jobs.TickJob", every=dt.timedelta(seconds=2), args=["b"]),
]
