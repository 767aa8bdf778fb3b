"""Run one message's job and decide what happens next: mark it, retry it, or stop the worker.

Called on a worker thread. Decides between the job's own rules (retry_on / discard_on), the route's
policy (backoff, dead letter queue) and critical errors; never touches the consumer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from typing import Any

from django.db import close_old_connections

from .. import signals
from ..conf import Backoff, KafkaJobsSettings
from ..exceptions import DecodeError, EnqueueError, JobNotRegistered
from ..execution import run_job
from ..job import Job, MessageInfo
from ..producer import get_producer
from ..retry import Action
from ..routing import Route
from ..serializer import get_serializer
from .dlq import dead_letter_message

logger = logging.getLogger("kafka_jobs.worker")

# Errors a job may not survive in-process: never retried, never dead-lettered; the worker stops.
CRITICAL = (SystemExit, KeyboardInterrupt, MemoryError, GeneratorExit)


class Verdict(enum.Enum):
    """What the listener does with the message after the executor is done with it."""

    DONE = "done"  # mark consumed
    RETRY = "retry"  # keep it at the head of its lane and try again after ``delay``
    CRITICAL = "critical"  # do not mark; stop the worker


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The executor's verdict on one message."""

    verdict: Verdict
    delay: float = 0.0
    counts_as_failure: bool = True  # False for a scheduled job that is simply not due yet
    error: BaseException | None = None


def describe(message: Any, job: Job | None = None, attempt: int | None = None) -> str:
    """Return the log prefix naming the job and its message coordinates."""
    where = f"{message.topic()}/{message.partition()}@{message.offset()}"
    if job is None:
        return f"message {where}"
    text = f"{job.job_name} id={job.job_id} {where}"
    return text if attempt is None else f"{text} attempt={attempt}"


class Executor:
    """Runs messages of routed topics for one worker process."""

    def __init__(self, settings: KafkaJobsSettings) -> None:
        self.settings = settings
        self.serializer = get_serializer()

    def backoff_for(self, route: Route) -> Backoff:
        """Return the route's backoff, or the global one."""
        return route.backoff or self.settings.backoff

    def process(self, message: Any, route: Route, failures: int, owned: Any) -> Outcome:
        """Run the job in ``message``; ``failures`` counts its earlier failed runs in this process.

        ``owned()`` tells whether this worker still owns the partition (checked before dead-lettering).
        """
        try:
            job = self.serializer.loads(message.value()).to_job()
        except (DecodeError, JobNotRegistered) as exc:
            return self._poison(message, route, exc, owned)
        except Exception as exc:  # a broken serializer or argument type: as unrecoverable as garbage
            return self._poison(message, route, exc, owned)
        if job.scheduled_at is not None:
            wait = (job.scheduled_at - dt.datetime.now(dt.UTC)).total_seconds()
            if wait > 0:
                return Outcome(Verdict.RETRY, delay=wait, counts_as_failure=False)
        job.executions = failures
        job.message = MessageInfo(message.topic(), message.partition(), message.offset(), message.key())
        attempt = failures + 1
        logger.info("%s started", describe(message, job, attempt))
        close_old_connections()
        try:
            run_job(job, report_failure=False)
        except CRITICAL as exc:
            logger.critical(
                "%s raised %s: stopping the worker; the job is not marked and runs again after restart",
                describe(message, job, attempt),
                type(exc).__name__,
            )
            signals.job_failed.send(
                type(job),
                job=job,
                message=job.message,
                duration=job.last_duration,
                exception=exc,
                will_retry=False,
            )
            return Outcome(Verdict.CRITICAL, error=exc)
        except Exception as exc:
            return self._failed(message, route, job, exc, owned)
        finally:
            close_old_connections()
        logger.info("%s succeeded in %.3fs", describe(message, job, attempt), job.last_duration or 0.0)
        return Outcome(Verdict.DONE)

    def _failed(self, message: Any, route: Route, job: Job, exc: Exception, owned: Any) -> Outcome:
        attempt = job.executions
        decision = job.retry_policy.decide(exc, attempt)
        prefix = describe(message, job, attempt)
        common = {"job": job, "message": job.message, "exception": exc}
        if decision.action is Action.DISCARD:
            signals.job_failed.send(type(job), duration=job.last_duration, will_retry=False, **common)
            logger.warning("%s failed with %r and was discarded (discard_on)", prefix, exc)
            signals.job_discarded.send(type(job), **common)
            return Outcome(Verdict.DONE, error=exc)
        if decision.action is Action.RETRY:
            return self._retry(prefix, job, exc, decision.delay, "retry_on")
        dlq = route.dead_letter_queue
        retries_spent = decision.rule is not None or (dlq is not None and attempt > dlq.max_retries)
        if dlq is not None and retries_spent:
            signals.job_failed.send(type(job), duration=job.last_duration, will_retry=False, **common)
            logger.error("%s failed with %r; retries spent", prefix, exc, exc_info=exc)
            return self._dead_letter(message, route, job, exc, attempt, owned)
        return self._retry(prefix, job, exc, self.backoff_for(route).delay(attempt), "backoff")

    def _retry(self, prefix: str, job: Job, exc: Exception, delay: float, why: str) -> Outcome:
        signals.job_failed.send(
            type(job),
            job=job,
            message=job.message,
            duration=job.last_duration,
            exception=exc,
            will_retry=True,
        )
        logger.warning("%s failed with %r; retrying in %.2fs (%s)", prefix, exc, delay, why, exc_info=exc)
        signals.job_retried.send(type(job), job=job, message=job.message, exception=exc, delay=delay)
        return Outcome(Verdict.RETRY, delay=delay, error=exc)

    def _poison(self, message: Any, route: Route, exc: Exception, owned: Any) -> Outcome:
        """A message that can never succeed: dead-letter it at once, or log it for an operator and move on."""
        if route.dead_letter_queue is not None:
            logger.error(
                "%s cannot be run (%s: %s); sending it to the dead letter queue",
                describe(message),
                type(exc).__name__,
                exc,
            )
            return self._dead_letter(message, route, None, exc, 1, owned)
        raw = message.value()
        logger.error(
            "%s cannot be run and is SKIPPED (%s: %s). The route has no dead_letter_queue; the message stays "
            "in the topic at this offset for inspection or replay. key=%r value[:500]=%r",
            describe(message),
            type(exc).__name__,
            exc,
            message.key(),
            raw[:500] if raw else raw,
        )
        signals.job_discarded.send(Job, job=None, message=_info(message), exception=exc)
        return Outcome(Verdict.DONE, error=exc)

    def _dead_letter(
        self, message: Any, route: Route, job: Job | None, exc: BaseException, attempts: int, owned: Any
    ) -> Outcome:
        dlq = route.dead_letter_queue
        assert dlq is not None
        if not owned():
            logger.warning("%s: partition no longer owned; not dead-lettering it", describe(message, job))
            return Outcome(Verdict.RETRY, delay=0.0, counts_as_failure=False, error=exc)
        try:
            get_producer().produce(
                [dead_letter_message(message, dlq.topic, group_id=self.settings.group_id, attempts=attempts, exc=exc)],
                sync=True,
            )
        except EnqueueError as produce_error:
            delay = self.backoff_for(route).delay(attempts)
            logger.error(
                "%s: could not write to the dead letter queue %s (%s); retrying in %.2fs",
                describe(message, job),
                dlq.topic,
                produce_error,
                delay,
            )
            return Outcome(Verdict.RETRY, delay=delay, counts_as_failure=False, error=exc)
        logger.error(
            "%s moved to the dead letter queue %s after %d attempt(s)",
            describe(message, job),
            dlq.topic,
            attempts,
        )
        signals.job_dead_lettered.send(
            type(job) if job is not None else Job,
            job=job,
            message=_info(message),
            exception=exc,
            dlq_topic=dlq.topic,
        )
        return Outcome(Verdict.DONE, error=exc)


def _info(message: Any) -> MessageInfo:
    return MessageInfo(message.topic(), message.partition(), message.offset(), message.key())
