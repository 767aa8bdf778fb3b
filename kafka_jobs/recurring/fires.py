"""What the schedule topic holds: the last fire of each schedule (compacted, keyed by schedule name).

A scheduler that takes over (after a restart or a rebalance) reads the topic back to know what already
fired. Also the rule that picks the tick to fire now, including the policy for ticks missed while no
scheduler ran.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from .timing import Schedule

RECORD_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FireRecord:
    """A schedule's state: known since ``since``; its last fired tick (None: none yet) and that job's id."""

    name: str
    since: dt.datetime
    last_tick: dt.datetime | None = None
    job_id: str | None = None
    fired_at: dt.datetime | None = None
    schedule: str = ""

    def encode(self) -> bytes:
        """Return the record as the JSON value of its schedule topic message."""
        return json.dumps(
            {
                "v": RECORD_VERSION,
                "name": self.name,
                "since": self.since.isoformat(),
                "last_tick": _iso(self.last_tick),
                "job_id": self.job_id,
                "fired_at": _iso(self.fired_at),
                "schedule": self.schedule,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> FireRecord | None:
        """Return the record in a message value; None if it is not one this release can read."""
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            if data.get("v") != RECORD_VERSION:
                return None
            return cls(
                name=str(data["name"]),
                since=_time(data["since"]),
                last_tick=_time(data["last_tick"]) if data.get("last_tick") else None,
                job_id=data.get("job_id"),
                fired_at=_time(data["fired_at"]) if data.get("fired_at") else None,
                schedule=str(data.get("schedule", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive time")
    return parsed


def tick_to_fire(
    schedule: Schedule, record: FireRecord, now: dt.datetime, missed: str, grace: dt.timedelta
) -> dt.datetime | None:
    """Return the tick to fire at ``now``, or None.

    Every tick fires once, in order, if it is at most ``grace`` late (a busy machine or a takeover is not
    downtime). Ticks later than that were missed while no scheduler ran: with ``missed="latest"`` only the
    latest of them fires, once; with ``"skip"`` none does. A schedule never fires for the time before it was
    first seen (``since``).
    """
    start = record.last_tick or record.since
    following = schedule.next_after(start)
    if following is None or following > now:
        return None
    if now - following <= grace:
        return following
    latest = schedule.latest_at(now)
    if latest is None or latest <= start:
        return None
    if missed == "skip" and now - latest > grace:
        return None
    return latest
