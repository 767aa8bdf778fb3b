"""The ``JOB_BACKEND`` choices and access to the configured backend."""

from __future__ import annotations

import threading

from django.utils.module_loading import import_string

from ..conf import get_settings
from .base import BaseBackend

BACKENDS = {
    "kafka": "kafka_jobs.backends.kafka.KafkaBackend",
    "async": "kafka_jobs.backends.threadpool.ThreadPoolBackend",
    "inline": "kafka_jobs.backends.inline.InlineBackend",
    "test": "kafka_jobs.backends.recording.RecordingBackend",
}

_lock = threading.Lock()
_backend: BaseBackend | None = None


def get_backend() -> BaseBackend:
    """Return the backend selected by ``JOB_BACKEND`` (one instance until settings change)."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = import_string(BACKENDS[get_settings().backend])()
        return _backend


def reset() -> None:
    """Close and forget the current backend (settings changed)."""
    global _backend
    with _lock:
        backend, _backend = _backend, None
    if backend is not None:
        backend.close()


__all__ = ["BACKENDS", "BaseBackend", "get_backend", "reset"]
