"""Settings of the test project. Worker subprocesses use them too, configured through the environment."""

import json
import os
import tempfile
from pathlib import Path

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "kafka_jobs",
    "tests",
]
# A file database, so worker subprocesses see what a test wrote (they get its path in KAFKA_JOBS_TEST_DB).
_db = os.environ.get("KAFKA_JOBS_TEST_DB") or str(Path(tempfile.gettempdir()) / f"kafka-jobs-{os.getpid()}.sqlite3")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db, "TEST": {"NAME": _db}}}

JOB_BACKEND = os.environ.get("JOB_BACKEND", "test")
KAFKA_JOBS = {
    "BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    "ROUTES": "tests.kafka_routes",
    "GROUP_ID": os.environ.get("KAFKA_JOBS_GROUP_ID", "kafka-jobs-tests"),
    "QUEUE_PREFIX": os.environ.get("KAFKA_JOBS_QUEUE_PREFIX", ""),
    # Tansu (the test broker) delays a group join by half the session timeout: keep it short in tests.
    "CONSUMER": {
        "session.timeout.ms": 2000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 6000,
        "topic.metadata.refresh.interval.ms": 2000,
    },
    "DELIVERY_TIMEOUT": 5.0,
    "BACKOFF": {"INITIAL": 0.2, "MAX": 1.0},
    "SHUTDOWN_TIMEOUT": 10.0,
    "COMMIT_INTERVAL": 0.2,
    **json.loads(os.environ.get("KAFKA_JOBS_TEST_OVERRIDES", "{}")),
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"kafka_jobs": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}
