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
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "kafka_jobs",
    "tests",
]
# The admin, for the dashboard's pages (tests/unit/test_dashboard_*.py, tests/browser/).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
# A file database, so worker subprocesses see what a test wrote (they get its path in KAFKA_JOBS_TEST_DB).
_db = os.environ.get("KAFKA_JOBS_TEST_DB") or str(Path(tempfile.gettempdir()) / f"kafka-jobs-{os.getpid()}.sqlite3")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db, "TEST": {"NAME": _db}}}

JOB_BACKEND = os.environ.get("JOB_BACKEND", "test")
_session_timeout_ms = int(os.environ.get("KAFKA_TEST_SESSION_TIMEOUT_MS", "2000"))
KAFKA_JOBS = {
    "BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    "ROUTES": "tests.kafka_routes",
    "GROUP_ID": os.environ.get("KAFKA_JOBS_GROUP_ID", "kafka-jobs-tests"),
    "QUEUE_PREFIX": os.environ.get("KAFKA_JOBS_QUEUE_PREFIX", ""),
    # Tansu (the test broker) delays a group join by half the session timeout: keep it short in tests.
    # Apache Kafka refuses a session timeout below group.min.session.timeout.ms (6000 by default): set
    # KAFKA_TEST_SESSION_TIMEOUT_MS=6000 when KAFKA_BOOTSTRAP_SERVERS points at such a broker.
    "CONSUMER": {
        "session.timeout.ms": _session_timeout_ms,
        "heartbeat.interval.ms": max(500, _session_timeout_ms // 4),
        "max.poll.interval.ms": max(6000, _session_timeout_ms),
        "topic.metadata.refresh.interval.ms": 2000,
    },
    "DELIVERY_TIMEOUT": 5.0,
    "BACKOFF": {"INITIAL": 0.2, "MAX": 1.0},
    "SHUTDOWN_TIMEOUT": 10.0,
    **json.loads(os.environ.get("KAFKA_JOBS_TEST_OVERRIDES", "{}")),
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"kafka_jobs": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}

# --- Worker core: a project whose LOGGING configures only the root logger (runkafkaworker must not hide its
# logs from it); set by tests/integration/test_worker_command.py for its worker subprocess.
if os.environ.get("KAFKA_JOBS_TEST_ROOT_LOGGING"):
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"root": {"format": "ROOT %(name)s %(levelname)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "root"}},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }

# --- Delayed and recurring jobs (worktree delays) ---------------------------------------------------------
# A short ladder of two small tier topics per test keeps the broker light and the delay tests fast; the
# default ladder is covered by the unit tests of kafka_jobs.delays.tiers.
KAFKA_JOBS.setdefault("DELAY_TIERS", [1, 3])
KAFKA_JOBS.setdefault("DELAY_PARTITIONS", 2)

# --- Transactional outbox (worktree outbox) ---------------------------------------------------------------------
# A PostgreSQL database beside the SQLite default, for the outbox tests only. tests/postgres.py starts the server
# when a test first asks for it (the postgres_db fixture), on a port chosen then: the fixture sets PORT and USER
# here, and worker or relay subprocesses receive them in these variables.
DATABASES["postgres"] = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "kafka_jobs_test",
    "USER": os.environ.get("KAFKA_JOBS_TEST_POSTGRES_USER", "postgres"),
    "HOST": "127.0.0.1",
    "PORT": os.environ.get("KAFKA_JOBS_TEST_POSTGRES_PORT", ""),
    "TEST": {"NAME": "kafka_jobs_test"},
}
