"""The ``JOB_BACKEND`` choices and access to the configured backend."""

from __future__ import annotations

import threading

from ..conf import BACKENDS, get_settings
from .base import BaseBackend, Prepared, backend_class

_lock = threading.Lock()
_backend: BaseBackend | None = None


def get_backend() -> BaseBackend:
    """Return the backend selected by ``JOB_BACKEND`` (one instance until settings change)."""
    global _backend
    backend = _backend  # read without the lock: called for every enqueue
    if backend is not None:
        return backend
    with _lock:
        if _backend is None:
            alias = get_settings().backend
            _backend = backend_class(alias)(alias)
        return _backend


def reset() -> None:
    """Close and forget the current backend (settings changed)."""
    global _backend
    with _lock:
        backend, _backend = _backend, None
    if backend is not None:
        backend.close()


__all__ = ["BACKENDS", "BaseBackend", "Prepared", "backend_class", "get_backend", "reset"]
