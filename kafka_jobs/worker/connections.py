"""``close_old_connections()`` for job threads, skipped while the thread has no open database connection.

Django's own ``close_old_connections`` looks up every database alias in the thread's connection storage
(an ``asgiref.Local``, whose misses raise and catch an exception each): about 7 µs with three aliases,
twice per job, for jobs that never touch the database. A connection can only become open through
``connect()``, which sends ``connection_created`` on the thread that opens it: until then there is
nothing to close, so the check is skipped. After a check that leaves every connection closed
(``CONN_MAX_AGE = 0``), the thread is clean again. The semantics are Django's request cycle's: stale,
broken or expired connections are closed before and after each job.
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import close_old_connections as django_close_old_connections
from django.db import connections
from django.db.backends.signals import connection_created

_thread = threading.local()  # "clean": no connection of this thread is open (unknown, so checked, at first)


def _opened(sender: Any, connection: Any, **kwargs: Any) -> None:
    _thread.clean = False


connection_created.connect(_opened, dispatch_uid="kafka_jobs.worker.connections")


def close_old_connections() -> None:
    """Close this thread's unusable or expired connections, as Django does around each request."""
    if getattr(_thread, "clean", False):
        return
    django_close_old_connections()
    _thread.clean = all(conn.connection is None for conn in connections.all(initialized_only=True))
