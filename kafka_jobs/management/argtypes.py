"""argparse ``type=`` functions shared by the management commands (invalid input fails before handle())."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandError
from django.db import connections

from kafka_jobs.validators import QUEUE_NAME_RULE, int_at_least_rule, is_int_at_least, is_queue_name


def positive_int(value: str) -> int:
    """Parse a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not is_int_at_least(number, 1):
        raise argparse.ArgumentTypeError(f"must be {int_at_least_rule(1)}, got {number}")
    return number


def queue_name(value: str) -> str:
    """Parse a queue name that can be a Kafka topic."""
    if not is_queue_name(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a valid queue name: use {QUEUE_NAME_RULE} (it names a Kafka topic)"
        )
    return value


def process_count(value: str) -> int:
    """Parse ``--processes``: a whole number >= 1, or ``auto`` for the number of CPUs this process may use."""
    if value.strip().lower() == "auto":
        from kafka_jobs.supervisor import available_cpus

        return available_cpus()
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or 'auto' for one per CPU)") from None


def port_number(value: str) -> int:
    """Parse a TCP port, 1 to 65535."""
    number = positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {number}")
    return number


def positive_seconds(value: str) -> float:
    """Parse a number of seconds > 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {value}")
    return number


def database_aliases(aliases: list[str] | None) -> list[str]:
    """Return the aliases to relay (default: ``default``); raise ``CommandError`` for an unknown one."""
    chosen = aliases or ["default"]
    unknown = [alias for alias in chosen if alias not in connections.settings]
    if unknown:
        raise CommandError(
            f"Unknown database alias(es) {', '.join(unknown)}; DATABASES has {', '.join(connections.settings)}."
        )
    return list(dict.fromkeys(chosen))


def outbox_databases(aliases: list[str] | None) -> list[str]:
    """Return ``database_aliases(aliases)``, refusing a database without the outbox table (``CommandError``)."""
    from kafka_jobs.dbtables import migrate_command
    from kafka_jobs.outbox.inspection import unmigrated

    chosen = database_aliases(aliases)
    missing = unmigrated(chosen)
    if missing:
        commands = "; ".join(migrate_command(alias) for alias in missing)
        raise CommandError(f"The outbox table does not exist in database(s) {', '.join(missing)}: run {commands}.")
    return chosen
