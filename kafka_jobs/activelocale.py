"""The caller's active language and time zone, read for every enqueued job at the cost of a few lookups.

Django keeps both in asgiref ``Local`` objects. Reading a value that is not set (the usual case outside a
request) raises and catches two exceptions under a lock: ``get_language()`` and
``get_current_timezone_name()`` together cost more than the rest of encoding a job. asgiref keeps a
``Local``'s values in a ``ContextVar`` and stores a new object there whenever one is set or deleted, so
each thread remembers the two stored objects it last saw and the answer they gave, and asks Django again
only when one of them is replaced (``activate``, ``override``, a new request or task, Django replacing a
``Local`` when ``LANGUAGE_CODE`` changes or translations are reloaded) or when a setting changes.
With an asgiref that stores values otherwise, every call asks Django.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from asgiref import local as asgiref_local
from django.utils import timezone, translation
from django.utils.translation import trans_real

_MISSING = object()


def _value_var(local: Any) -> ContextVar[Any] | None:
    """Return the ContextVar that holds ``local``'s values, or None if this asgiref keeps them otherwise."""
    storage = vars(local).get("_storage")
    variable = getattr(storage, "__dict__", {}).get("_data")
    # _Storage: values are copied into a new object on every change (asgiref >= 3.11), never changed in place.
    if isinstance(variable, ContextVar) and hasattr(asgiref_local, "_Storage"):
        return variable
    return None


# Checked once: both locals are asgiref Locals of the installed version (Django may replace them by new ones,
# of the same kind).
FAST = _value_var(trans_real._active) is not None and _value_var(timezone._active) is not None  # type: ignore[attr-defined]


class _Seen(threading.local):
    key: tuple[Any, ...] | None = None
    answer: tuple[str | None, str] = (None, "")


_seen = _Seen()
_generation = 0  # bumped when a setting changes: the answers seen before may be stale


def forget() -> None:
    """Ask Django again at the next call (a setting changed)."""
    global _generation
    _generation += 1


def current() -> tuple[str | None, str]:
    """Return the active language (``translation.get_language()``) and time zone name of this thread."""
    if not FAST:
        return translation.get_language(), timezone.get_current_timezone_name()
    # Read through the modules each time: Django replaces a Local when LANGUAGE_CODE changes or translations
    # are reloaded (its stored object then differs from the one seen: nothing or a new one).
    language_stored = trans_real._active._storage._data.get(_MISSING)
    zone_stored = timezone._active._storage._data.get(_MISSING)  # type: ignore[attr-defined]
    key = (_generation, language_stored, zone_stored)
    seen = _seen
    if seen.key != key:
        seen.answer = translation.get_language(), timezone.get_current_timezone_name()
        seen.key = key
    return seen.answer
