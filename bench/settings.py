"""Django settings of the benchmark; worker subprocesses get their scenario through the environment.

BENCH_QUEUE_PREFIX and BENCH_GROUP_ID isolate each scenario (fresh topics or a fresh consumer group);
BENCH_TANSU=1 applies the short group timeouts the embedded Tansu broker needs (its join waits half the
session timeout); BENCH_OVERRIDES is JSON merged into KAFKA_JOBS.
"""

import json
import os

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["kafka_jobs", "bench"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    # The outbox section starts a PostgreSQL server and fills in PORT and USER (bench/outbox.py).
    "postgres": {"ENGINE": "django.db.backends.postgresql", "NAME": "kafka_jobs_test", "HOST": "127.0.0.1"},
    # The outbox section's SQLite file (a relay thread needs a database other connections share).
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("BENCH_SQLITE", ":memory:")},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_TANSU_CONSUMER = {
    "session.timeout.ms": 2000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 10000,
    "topic.metadata.refresh.interval.ms": 2000,
}

JOB_BACKEND = "kafka"
KAFKA_JOBS = {
    "BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    "ROUTES": "bench.kafka_routes",
    "GROUP_ID": os.environ.get("BENCH_GROUP_ID", "kafka-jobs-bench"),
    "QUEUE_PREFIX": os.environ.get("BENCH_QUEUE_PREFIX", "bench."),
    "CONSUMER": _TANSU_CONSUMER if os.environ.get("BENCH_TANSU") == "1" else {},
    **json.loads(os.environ.get("BENCH_OVERRIDES", "{}")),
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"kafka_jobs": {"handlers": ["stderr"], "level": "WARNING", "propagate": False}},
}
