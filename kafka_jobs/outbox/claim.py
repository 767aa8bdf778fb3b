"""Which relay produces which rows, and in which order.

PostgreSQL: a relay takes lanes (session advisory locks, try-lock: never waits), then reads the pending rows
of its lanes in id order. One relay at a time per lane keeps the order of a key, however many relays run; a
crashed relay's locks go with its connection. Other databases: one relay, reading every pending row in id
order (run only one: two would produce rows twice, never lose one).

Why the order of a key is the order of commits: a relay reads only committed rows, the oldest first, and
deletes what it produced, with no cursor. A row whose transaction commits later (even with a lower id,
allocated earlier) is simply read on a later round, after what was committed before it.
"""

from __future__ import annotations

from django.db import connections
from django.db.models import QuerySet

from .models import OutboxMessage

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
    if connections[alias].vendor == "postgresql":
        return LaneLockClaimer(alias)
    return Claimer(alias)
