"""The worker's executor with the job path observed: counts, durations, running jobs (and trace spans)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..conf import KafkaJobsSettings
from ..routing import Route
from ..serializer import Envelope
from ..worker.executor import Executor, Outcome, Verdict
from .stats import JobStats


class ObservedExecutor(Executor):
    """An ``Executor`` that records each run in ``stats`` (two clock reads and a few counter updates a job)."""

    def __init__(self, settings: KafkaJobsSettings, stats: JobStats) -> None:
        super().__init__(settings)
        self.stats = stats

    def process(
        self,
        message: Any,
        route: Route,
        failures: int,
        owned: Callable[[], bool],
        *,
        envelope: Envelope | None = None,
    ) -> Outcome:
        """Run the message's job (see ``Executor.process``) and record how it ended."""
        stats = self.stats
        thread = threading.get_ident()
        stats.started(thread, message)
        started = time.monotonic()
        outcome = Outcome(Verdict.CRITICAL)
        try:
            outcome = super().process(message, route, failures, owned, envelope=envelope)
            return outcome
        finally:
            stats.finished(thread, message, time.monotonic() - started, outcome)
