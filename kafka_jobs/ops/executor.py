"""The worker's executor with the job path observed: counts, durations, running jobs, and trace spans."""

from __future__ import annotations

from collections.abc import Callable
from threading import get_ident
from time import monotonic, time
from typing import Any

from ..conf import KafkaJobsSettings
from ..routing import Route
from ..serializer import Envelope
from ..worker.executor import Executor, Outcome, Verdict
from . import tracing
from .stats import JobStats, job_of

# What a run that raised out of the executor (a bug: it never raises) is counted as.
_CRASHED = Outcome(Verdict.CRITICAL)


class ObservedExecutor(Executor):
    """An ``Executor`` that records each run in ``stats`` (two clock reads and a few counter updates a job).

    With OpenTelemetry (``kafka_jobs.ops.tracing``), each run happens in a consumer span continuing the
    trace context of the message, on the job's own thread, so the job's own spans are its children.
    """

    def __init__(self, settings: KafkaJobsSettings, stats: JobStats) -> None:
        super().__init__(settings)
        self.stats = stats
        # Decided once: the project sets its tracer provider at start-up (settings or AppConfig.ready).
        self.tracing = tracing.enabled()

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
        if self.tracing:
            return self._traced(message, route, failures, owned, envelope)
        return self._observed(message, route, failures, owned, envelope)

    def _observed(
        self, message: Any, route: Route, failures: int, owned: Callable[[], bool], envelope: Envelope | None
    ) -> Outcome:
        stats = self.stats
        thread = get_ident()
        stats.running[thread] = (message, time())  # finished() removes it
        started = monotonic()
        outcome = _CRASHED
        try:
            outcome = super().process(message, route, failures, owned, envelope=envelope)
        finally:
            stats.finished(thread, message, monotonic() - started, outcome)
        return outcome

    def _traced(
        self, message: Any, route: Route, failures: int, owned: Callable[[], bool], envelope: Envelope | None
    ) -> Outcome:
        job, job_id = job_of(message)
        with tracing.consumer_span(message, job, job_id, self.settings.group_id) as span:
            outcome = self._observed(message, route, failures, owned, envelope)
            if span is not None:
                span.set_attribute("kafka_jobs.attempt", failures + 1)
                tracing.record_outcome(span, outcome.error, outcome.verdict.value)
            return outcome
