"""django.tasks on kafka_jobs: ``TASKS = {"default": {"BACKEND": "kafka_jobs.tasks.KafkaTaskBackend"}}``.

``KafkaTaskBackend`` is imported on first use, so importing this package (as the app registry does, to
register ``TaskJob``) never needs the task framework: Django 6, or the django-tasks backport on 5.2.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KafkaTaskBackend"]


def __getattr__(name: str) -> Any:
    if name == "KafkaTaskBackend":
        from .backend import KafkaTaskBackend

        return KafkaTaskBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
