"""Whether a model's table exists in a database: commands and the worker refuse an unmigrated database by name
instead of failing later with an OperationalError."""

from __future__ import annotations

from django.db import connections, models


def table_exists(model: type[models.Model], alias: str) -> bool:
    """Return whether ``model``'s table exists in database ``alias`` (whether ``migrate`` was run there)."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        return model._meta.db_table in connection.introspection.table_names(cursor)


def migrate_command(alias: str) -> str:
    """Return the command that creates kafka_jobs' tables in database ``alias``, for the errors that refuse it."""
    return f"manage.py migrate kafka_jobs --database {alias}"
