"""Carry custom context (a tenant, a request id) from ``perform_later`` to ``perform``, like Rails' CurrentAttributes.

Register job contexts in ``KAFKA_JOBS['CONTEXT']`` (dotted paths to objects, or classes taking no
arguments) or with ``register_context``. At enqueue each one's ``capture()`` runs in the caller; what it
returns (JSON values; None carries nothing) travels in the job's envelope. Around each run of the job,
in whatever process and thread runs it, ``restore(value)`` sets it and ``reset(token)`` puts back what was
there before, even when the job fails. ``ContextVarContext`` does this for a ``contextvars.ContextVar``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from functools import cache
from typing import Any, Protocol, runtime_checkable

from django.utils.module_loading import import_string

from ..conf import get_settings
from ..exceptions import ConfigurationError, EncodeError


@runtime_checkable
class JobContext(Protocol):
    """One piece of context carried from enqueue to perform."""

    key: str  # its name in the envelope; unique among the registered contexts

    def capture(self) -> Any:
        """Return the value to carry (JSON-safe), or None to carry nothing; runs where the job is enqueued."""

    def restore(self, value: Any) -> Any:
        """Make ``value`` current before the job runs; return a token for ``reset``."""

    def reset(self, token: Any) -> None:
        """Undo ``restore`` after the job ran (also when it failed)."""


class ContextVarContext:
    """A job context kept in a ``ContextVar``: ``ContextVarContext("tenant", tenant_var)``."""

    def __init__(self, key: str, var: ContextVar[Any]) -> None:
        self.key = key
        self.var = var

    def capture(self) -> Any:
        """Return the variable's value in the caller (None if unset)."""
        return self.var.get(None)

    def restore(self, value: Any) -> Any:
        """Set the variable for the job."""
        return self.var.set(value)

    def reset(self, token: Any) -> None:
        """Put back the variable's previous value."""
        self.var.reset(token)


_registered: list[JobContext] = []


def register_context(context: JobContext) -> JobContext:
    """Register a job context (beside those of ``KAFKA_JOBS['CONTEXT']``); return it."""
    _check(context, repr(context))
    if any(existing.key == context.key for existing in contexts()):
        raise ConfigurationError(f"A job context with key {context.key!r} is already registered.")
    _registered.append(context)
    return context


def unregister_context(context: JobContext) -> None:
    """Remove a context registered with ``register_context`` (tests)."""
    _registered.remove(context)


def _check(context: Any, where: str) -> None:
    if not isinstance(context, JobContext) or not isinstance(getattr(context, "key", None), str) or not context.key:
        raise ConfigurationError(
            f"{where} is not a job context: it needs a non-empty str 'key' and capture(), restore(value) and "
            "reset(token) methods (see kafka_jobs.ops.context)."
        )


@cache
def _configured(paths: tuple[str, ...]) -> tuple[JobContext, ...]:
    loaded = []
    for path in paths:
        try:
            obj = import_string(path)
        except ImportError as exc:
            raise ConfigurationError(f"KAFKA_JOBS['CONTEXT'] entry {path!r} cannot be imported: {exc}") from exc
        context = obj() if isinstance(obj, type) else obj
        _check(context, f"KAFKA_JOBS['CONTEXT'] entry {path!r}")
        loaded.append(context)
    keys = [c.key for c in loaded]
    if len(set(keys)) != len(keys):
        raise ConfigurationError(f"KAFKA_JOBS['CONTEXT'] has two contexts with the same key: {keys}.")
    return tuple(loaded)


def contexts() -> list[JobContext]:
    """Return every registered job context."""
    return [*_configured(get_settings().context), *_registered]


def capture() -> dict[str, Any] | None:
    """Return the values of the registered contexts now (None if there is nothing to carry)."""
    if not _registered and not get_settings().context:  # the usual case, checked first: it runs per job
        return None
    registered = contexts()
    values = {}
    for context in registered:
        try:
            value = context.capture()
        except Exception as exc:
            raise EncodeError(f"Job context {context.key!r} failed to capture its value: {exc!r}") from exc
        if value is not None:
            values[context.key] = value
    return values or None


class restored:  # a class, not a generator with an ExitStack: it runs around every job that carries context
    """Restore the carried ``values`` for the block; reset them afterwards, in reverse order.

    Every reset runs, even if one raises (then the last error raised propagates); a restore that raises
    first resets those already restored.
    """

    __slots__ = ("_resets", "_values")

    def __init__(self, values: Mapping[str, Any] | None) -> None:
        self._values = values
        self._resets: list[tuple[Any, Any]] = []

    def __enter__(self) -> None:
        values = self._values
        if not values:
            return
        resets = self._resets
        try:
            for context in contexts():
                if context.key in values:
                    resets.append((context.reset, context.restore(values[context.key])))
        except BaseException:
            self._reset_all()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._reset_all()

    def _reset_all(self) -> None:
        resets = self._resets
        error: BaseException | None = None
        while resets:
            reset, token = resets.pop()
            try:
                reset(token)
            except BaseException as exc:  # the other resets still run
                error = exc
        if error is not None:
            raise error
