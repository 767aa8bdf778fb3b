"""Which relay produces which rows, and in which order.

PostgreSQL: a relay takes lanes (session advisory locks, try-lock: never waits), then reads the pending rows
of its lanes in id order. One relay at a time per lane keeps the order of a key, however many relays run; a
crashed relay's locks go with its connection. SQLite (a file): one relay, reading every pending row in id
order; a file lock beside the database makes a second relay wait (standing by) instead of producing rows
twice. Other databases: the same, without the lock (run only one relay).

Why the order of a key is the order of commits: a relay reads only committed rows, the oldest first, and
deletes what it produced, with no cursor. A row whose transaction commits later (even with a lower id,
allocated earlier) is simply read on a later round, after what was committed before it.
"""

from __future__ import annotations

import fcntl
import logging
import os

from django.db import connections
from django.db.models import QuerySet

from .models import OutboxMessage

logger = logging.getLogger("kafka_jobs.outbox")

# pg_try_advisory_lock(int4, int4): the first number says "kafka_jobs outbox lane" ('kjob' in ASCII).
LOCK_CLASS = 0x6B6A6F62
# A relay takes at most this many lanes per round, leaving the others to other relays.
MAX_LANES = 16
# Lanes are picked among those of the oldest pending rows: a bounded index scan, whatever the backlog.
CANDIDATE_ROWS = 2000


class Claimer:
    """Claim pending rows on every database but PostgreSQL: all of them (one relay)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def pending(self) -> QuerySet[OutboxMessage]:
        """Return the pending rows of this database, oldest first."""
        return OutboxMessage.objects.using(self.alias).filter(failed_at__isnull=True).order_by("id")

    def claim(self, limit: int) -> list[OutboxMessage]:
        """Return up to ``limit`` rows to produce, in the order to produce them."""
        return list(self.pending()[:limit])

    def release(self) -> None:
        """Give back what ``claim`` took (nothing here)."""

    def close(self) -> None:
        """Release what the claimer holds for the relay's life."""


class SqliteClaimer(Claimer):
    """One relay per SQLite file: an exclusive ``flock`` on ``<database>-kafka-jobs-relay.lock``, held for life.

    A relay that cannot take it claims nothing (it stands by, trying again at each look) until the holder
    stops; the kernel releases the lock of a relay that dies.
    """

    def __init__(self, alias: str, path: str) -> None:
        super().__init__(alias)
        self.lock_path = f"{path}-kafka-jobs-relay.lock"
        self._fd: int | None = None
        self._told = False

    def _holds_lock(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if not self._told:
                self._told = True
                logger.info("Another relay holds %s; standing by", self.lock_path)
            return False
        self._fd = fd
        return True

    def claim(self, limit: int) -> list[OutboxMessage]:
        """Return the oldest pending rows if this relay holds the database's relay lock, else none."""
        return super().claim(limit) if self._holds_lock() else []

    def close(self) -> None:
        """Give the lock to a relay standing by."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class LaneLockClaimer(Claimer):
    """Claim whole lanes with advisory locks (PostgreSQL): several relays share the work, each key in order."""

    def __init__(self, alias: str, max_lanes: int = MAX_LANES) -> None:
        super().__init__(alias)
        self.max_lanes = max_lanes
        self._locked = False

    def claim(self, limit: int) -> list[OutboxMessage]:
        """Lock lanes (oldest pending row first) that no other relay holds; return their oldest rows."""
        table = OutboxMessage._meta.db_table
        lanes: list[int] = []
        with connections[self.alias].cursor() as cursor:
            cursor.execute(f"SELECT lane FROM {table} WHERE failed_at IS NULL ORDER BY id LIMIT %s", [CANDIDATE_ROWS])
            for lane in dict.fromkeys(row[0] for row in cursor.fetchall()):  # oldest first, each once
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, lane])
                if cursor.fetchone()[0]:
                    self._locked = True
                    lanes.append(lane)
                    if len(lanes) >= self.max_lanes:
                        break
        if not lanes:
            return []
        # Read after locking (a new statement, a new snapshot): what the lane's last holder deleted is gone.
        return list(self.pending().filter(lane__in=lanes)[:limit])

    def release(self) -> None:
        """Unlock every lane this connection holds."""
        if self._locked:
            self._locked = False
            with connections[self.alias].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_all()")


def claimer_for(alias: str) -> Claimer:
    """Return the claimer that fits database ``alias``."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return LaneLockClaimer(alias)
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite" and name != ":memory:" and "mode=memory" not in name:
        return SqliteClaimer(alias, name)
    return Claimer(alias)


def several_relays_safe(alias: str) -> bool:
    """Whether several relays may run on database ``alias`` (lanes on PostgreSQL, a standby lock on SQLite)."""
    return type(claimer_for(alias)) is not Claimer
