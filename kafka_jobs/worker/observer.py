"""What the worker tells an observer (``kafka_jobs.ops``), always on the poll thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .shutdown import ExitCode
    from .worker import Worker


class WorkerObserver(Protocol):
    """Called by ``Worker.run``; each call must return quickly (it delays the poll loop)."""

    def started(self, worker: Worker) -> None:
        """The consumer exists and the worker is about to join the group."""

    def turn(self) -> None:
        """One turn of the poll loop ended."""

    def stopping(self) -> None:
        """A stop was requested: running jobs finish, then the worker leaves the group."""

    def stopped(self, code: ExitCode) -> None:
        """The worker left the group (or failed) and exits with ``code``."""
