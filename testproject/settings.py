"""Settings of the testproject, read from the environment with django-environ.

Every value has a development default, so ``manage.py`` works on a fresh clone. Point it at a real
cluster with ``KAFKA_BOOTSTRAP_SERVERS`` (and the ``KAFKA_SECURITY_*`` / ``KAFKA_SASL_*`` variables).
"""

from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state (the default SQLite database) lives here; the directory is git-ignored.
STATE_DIR = BASE_DIR / ".kafka_jobs"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    # The admin, where kafka_jobs shows its dashboard (/admin/kafka_jobs/dashboard/).
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "kafka_jobs",
    "testproject.example",
]
if django.VERSION < (6, 0):  # django.tasks is built into Django 6; the backport is an app
    INSTALLED_APPS.append("django_tasks")
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"

if "DATABASE_URL" not in env:
    STATE_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{STATE_DIR / 'testproject.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Worker threads write concurrently: wait for the lock instead of failing with "database is locked",
    # take the write lock up front, and let readers (the view) run beside a writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Keep connections open between jobs (the worker closes them only when older than this), as between requests.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# kafka_jobs ---------------------------------------------------------------------------------------------

JOB_BACKEND = env.str("JOB_BACKEND", default="kafka")

# Security settings for a real cluster (e.g. SASL_SSL + SCRAM); empty values are left out.
_kafka_security = {
    key: value
    for key, value in {
        "security.protocol": env.str("KAFKA_SECURITY_PROTOCOL", default=""),
        "sasl.mechanism": env.str("KAFKA_SASL_MECHANISM", default=""),
        "sasl.username": env.str("KAFKA_SASL_USERNAME", default=""),
        "sasl.password": env.str("KAFKA_SASL_PASSWORD", default=""),
        "ssl.ca.location": env.str("KAFKA_SSL_CA_LOCATION", default=""),
    }.items()
    if value
}

KAFKA_JOBS = {
    "BOOTSTRAP_SERVERS": env.str("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092"),
    "ROUTES": "testproject.kafka_routes",
    "CLIENT_ID": "testproject",
    "GROUP_ID": env.str("KAFKA_JOBS_GROUP_ID", default="testproject"),
    "QUEUE_PREFIX": env.str("KAFKA_JOBS_QUEUE_PREFIX", default=""),
    "PRODUCER": {**_kafka_security},
    "CONSUMER": {
        **_kafka_security,
        # 6 s is the smallest session timeout Kafka accepts by default; the Tansu dev broker makes a
        # consumer wait half of it to join a group, so a short one keeps the demo's start-up quick.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
    },
    "DELIVERY_TIMEOUT": 10.0,
    "SHUTDOWN_TIMEOUT": 10.0,
}

# django.tasks: @task functions (testproject/example/tasks.py) run on the same Kafka workers as jobs, and their
# results are kept in the database (GET /results/<id>/ reads one).
TASKS = {
    "default": {
        "BACKEND": "kafka_jobs.tasks.KafkaTaskBackend",
        "QUEUES": ["default"],
        "OPTIONS": {"RESULTS": "database"},
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s [%(process)d %(threadName)s] %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "kafka_jobs": {
            "handlers": ["stderr"],
            "level": env.str("KAFKA_JOBS_LOG_LEVEL", default="INFO"),
            "propagate": False,
        },
        # django.tasks' own lines (a task started, finished), from Django 6 or the backport.
        **{
            name: {"handlers": ["stderr"], "level": env.str("KAFKA_JOBS_LOG_LEVEL", default="INFO"), "propagate": False}
            for name in ("django.tasks", "django_tasks")
        },
    },
}
