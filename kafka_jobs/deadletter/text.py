"""Text about a failure that can always be built: formatting user objects never raises, headers stay UTF-8.

A dead letter is written after a job has failed for good; if describing the failure raised, the worker
could only try again, so every user-controlled value (an exception's ``__str__`` and ``__repr__``, its
class names, its traceback) goes through these functions, which fall back instead of raising.
"""

from __future__ import annotations

import traceback
from typing import Any

MAX_LINE = 500  # characters of one traceback line
MAX_TRACEBACK = 4000  # characters of the whole traceback
MAX_EXCEPTION_MESSAGE = 2000  # characters
MAX_NAME = 500  # characters of a class name, job name, group id... in a header


def cut(text: str, limit: int) -> str:
    """Return at most ``limit`` characters of ``text`` (characters, never bytes)."""
    return text if len(text) <= limit else text[:limit]


def utf8(text: str) -> bytes:
    """Encode ``text`` as valid UTF-8 (a lone surrogate becomes ``?``)."""
    return text.encode("utf-8", "replace")


def class_name(value: Any) -> str:
    """Return ``module.QualifiedName`` of ``value``'s class, or a placeholder if the class misreports them."""
    kind = type(value)
    try:
        module, name = kind.__module__, kind.__qualname__
        if isinstance(module, str) and isinstance(name, str):
            return cut(f"{module}.{name}", MAX_NAME)
    except Exception:  # a metaclass may make these properties that raise
        pass
    return cut(object.__repr__(kind), MAX_NAME)


def safe_repr(value: Any, limit: int = MAX_EXCEPTION_MESSAGE) -> str:
    """Return ``repr(value)`` (cut), or a placeholder naming its class if ``__repr__`` raises."""
    try:
        text = repr(value)
    except Exception:
        return f"<{class_name(value)}: repr() failed>"
    return cut(text, limit) if isinstance(text, str) else f"<{class_name(value)}>"


def exception_message(exc: BaseException) -> str:
    """Return ``str(exc)`` in at most ``MAX_EXCEPTION_MESSAGE`` characters; fall back to ``repr``, then the class."""
    try:
        return cut(str(exc), MAX_EXCEPTION_MESSAGE)
    except Exception:
        pass
    try:
        return cut(f"<str() failed> {exc!r}", MAX_EXCEPTION_MESSAGE)
    except Exception:
        return f"<{class_name(exc)}: str() and repr() failed>"


def trimmed_traceback(exc: BaseException) -> str:
    """Return the traceback of ``exc`` (with its causes) in at most about ``MAX_TRACEBACK`` characters.

    Long lines (usually exception messages, which have a header of their own) are cut first, so the frames
    survive; then the innermost end is kept. If formatting fails, the frames alone are tried, then a note.
    """
    try:
        chunks = list(traceback.TracebackException.from_exception(exc).format())
    except Exception:
        try:
            chunks = [*traceback.format_tb(exc.__traceback__), f"{exception_message(exc)}\n"]
        except Exception:
            return f"<the traceback of {class_name(exc)} could not be formatted>"
    trace = "".join(c if len(c) <= MAX_LINE else c[:MAX_LINE] + "...\n" for c in chunks)
    if len(trace) > MAX_TRACEBACK:
        trace = "...\n" + trace[-MAX_TRACEBACK:]
    return trace
