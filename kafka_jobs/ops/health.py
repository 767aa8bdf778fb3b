"""The worker's liveness file: touched by the poll loop, read by ``manage.py kafkaworkerhealth``."""

from __future__ import annotations

import contextlib
import os

# The poll loop touches the file at most this often.
TOUCH_INTERVAL = 1.0


class HealthFile:
    """A file whose modification time says when the poll loop last turned."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._next = 0.0

    def maybe_touch(self, now: float) -> None:
        """Touch the file if ``TOUCH_INTERVAL`` passed since the last time."""
        if now >= self._next:
            self._next = now + TOUCH_INTERVAL
            self.touch(consumer_ok=True)

    def touch(self, *, consumer_ok: bool) -> None:
        """Set the file's modification time to now (creating it)."""
        with contextlib.suppress(OSError):
            with open(self.path, "a"):
                pass
            os.utime(self.path)

    def remove(self) -> None:
        """Delete the file (a stopped worker is not alive)."""
        with contextlib.suppress(OSError):
            os.remove(self.path)
