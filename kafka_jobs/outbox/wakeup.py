"""How a waiting relay learns that rows were committed: LISTEN/NOTIFY on PostgreSQL, a short poll elsewhere.

The migration's trigger sends a NOTIFY on channel ``kafka_jobs_outbox`` for every INSERT into the outbox;
PostgreSQL delivers it when the transaction commits (never on rollback). The listening connection is
opened before the first look at the table, so a commit between that look and the wait still wakes it.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from django.db import connections

logger = logging.getLogger("kafka_jobs.outbox")

CHANNEL = "kafka_jobs_outbox"
# Even with notifications a relay looks at the table this often: rows left by a failed attempt, lanes
# another relay held, a notification lost with a broken connection.
LISTEN_SAFETY_INTERVAL = 0.5


class PollWaker:
    """Wait a fixed interval (the poll interval) or until stopped."""

    def __init__(self, interval: float, stop: threading.Event) -> None:
        self.interval = interval
        self.stop = stop

    def wait(self) -> None:
        """Return after the interval, or at once when stopped."""
        self.stop.wait(self.interval)

    def close(self) -> None:
        """Nothing to release."""


class NotifyWaker(PollWaker):
    """Wait for a NOTIFY on a connection of its own (PostgreSQL), at most the safety interval."""

    def __init__(self, alias: str, stop: threading.Event) -> None:
        super().__init__(LISTEN_SAFETY_INTERVAL, stop)
        self.alias = alias
        self._conn = None
        self._listen()

    def _listen(self) -> None:
        wrapper = connections[self.alias]
        try:
            conn = wrapper.get_new_connection(wrapper.get_connection_params())
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception:
            logger.warning("LISTEN on %r failed; polling every %.1fs", self.alias, self.interval, exc_info=True)
            self._conn = None
            return
        self._conn = conn

    def wait(self) -> None:
        """Return on a notification, after the safety interval, or soon after a stop."""
        if self._conn is None:
            super().wait()
            self._listen()
            return
        try:
            for _ in self._conn.notifies(timeout=self.interval, stop_after=1):
                break
            # Several commits may have notified: one look at the table serves them all.
            for _ in self._conn.notifies(timeout=0):
                pass
        except Exception:
            logger.warning("The LISTEN connection to %r broke; reconnecting", self.alias, exc_info=True)
            self.close()
            super().wait()

    def close(self) -> None:
        """Close the listening connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def waker_for(alias: str, poll_interval: float, stop: threading.Event) -> PollWaker:
    """Return the waker that fits database ``alias``."""
    if connections[alias].vendor == "postgresql":
        return NotifyWaker(alias, stop)
    return PollWaker(poll_interval, stop)
