"""When a recurring schedule ticks: cron expressions (through ``cronsim``) and fixed intervals.

Pure functions of the clock, so every worker computes the same ticks. Cron expressions are evaluated in
the schedule's time zone, with Debian cron's behaviour around daylight saving changes (a tick in the hour
that is skipped runs right after it; a tick in the hour that repeats runs once). Intervals are counted
from the Unix epoch, so ``every=timedelta(hours=1)`` ticks on the hour, on every worker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any, Protocol

from ..exceptions import ConfigurationError

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = dt.timedelta(seconds=1)


class Schedule(Protocol):
    """When a recurring job ticks."""

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """Return the first tick strictly after ``moment`` (None if there is none)."""

    def latest_at(self, moment: dt.datetime) -> dt.datetime | None:
        """Return the last tick at or before ``moment`` (None if there is none)."""

    def describe(self) -> str:
        """Return the schedule as a user wrote it, for logs and ``kafkascheduled``."""


def _cronsim() -> Any:
    try:
        import cronsim
    except ImportError:
        raise ConfigurationError(
            "A recurring job with cron= needs the cronsim package, which is not installed. Install it with "
            "pip install 'kafka-jobs[cron]' (or use every=timedelta(...) for a fixed interval)."
        ) from None
    return cronsim


def time_zone(name: Any, where: str) -> zoneinfo.ZoneInfo:
    """Return the time zone named ``name``; raise ``ConfigurationError`` if there is no such zone."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{where}: timezone must be an IANA name such as 'Europe/Berlin', got {name!r}.")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"{where}: unknown timezone {name!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'."
        ) from None


@dataclasses.dataclass(frozen=True)
class CronSchedule:
    """Ticks where a cron expression matches (5 fields, or 6 with seconds first), in a time zone."""

    expression: str
    zone: zoneinfo.ZoneInfo

    @classmethod
    def parse(cls, expression: Any, zone: zoneinfo.ZoneInfo, where: str) -> CronSchedule:
        """Validate ``expression`` now, so a bad one is a configuration error, not a scheduler crash."""
        cronsim = _cronsim()
        if not isinstance(expression, str):
            raise ConfigurationError(f"{where}: cron must be a string such as '0 3 * * *', got {expression!r}.")
        try:
            probe = cronsim.CronSim(expression, dt.datetime.now(zone))
            next(probe)
        except cronsim.CronSimError as exc:
            raise ConfigurationError(
                f"{where}: invalid cron expression {expression!r} ({exc}). Use five fields, minute hour "
                "day-of-month month day-of-week, e.g. '0 3 * * *' (or six, with seconds first)."
            ) from None
        except StopIteration:
            raise ConfigurationError(f"{where}: the cron expression {expression!r} never matches.") from None
        return cls(expression, zone)

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """Return the first tick strictly after ``moment``."""
        cronsim = _cronsim()
        try:
            return _utc(next(cronsim.CronSim(self.expression, moment.astimezone(self.zone))))
        except StopIteration:
            return None

    def latest_at(self, moment: dt.datetime) -> dt.datetime | None:
        """Return the last tick at or before ``moment``."""
        cronsim = _cronsim()
        # Ticks are whole seconds: searching backwards from the next whole second finds one at ``moment`` too.
        start = moment.astimezone(self.zone).replace(microsecond=0) + ONE_SECOND
        try:
            return _utc(next(cronsim.CronSim(self.expression, start, reverse=True)))
        except StopIteration:
            return None

    def describe(self) -> str:
        """Return ``cron '<expression>' <zone>``."""
        return f"cron {self.expression!r} {self.zone.key}"


@dataclasses.dataclass(frozen=True)
class IntervalSchedule:
    """Ticks every ``every``, counted from the Unix epoch (so on every worker at the same instants)."""

    every: dt.timedelta

    @classmethod
    def parse(cls, every: Any, where: str) -> IntervalSchedule:
        """Validate ``every``: a timedelta (or seconds) of at least one second, in whole milliseconds."""
        if isinstance(every, int | float) and not isinstance(every, bool):
            every = dt.timedelta(seconds=every)
        if not isinstance(every, dt.timedelta):
            raise ConfigurationError(f"{where}: every must be a timedelta (or seconds), got {every!r}.")
        if every < ONE_SECOND or every % dt.timedelta(milliseconds=1):
            raise ConfigurationError(
                f"{where}: every must be at least one second, in whole milliseconds; got {every!r}."
            )
        return cls(every)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """Return the first tick strictly after ``moment``."""
        return EPOCH + ((moment - EPOCH) // self.every + 1) * self.every

    def latest_at(self, moment: dt.datetime) -> dt.datetime:
        """Return the last tick at or before ``moment``."""
        return EPOCH + ((moment - EPOCH) // self.every) * self.every

    def describe(self) -> str:
        """Return ``every <interval>``."""
        return f"every {self.every}"


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC)
