"""Run one message's job and decide what happens next: mark it, retry it, or stop the worker.

Called on a worker thread. Decides between the job's own rules (retry_on / discard_on), the route's
policy (backoff, dead letter queue) and critical errors; never touches the consumer.

What happens to a failure:

- ``discard_on`` matches: logged, ``job_discarded``, marked consumed.
- ``retry_on`` matches with attempts left: retried after the rule's wait (the partition waits).
- Otherwise (no rule, or its attempts are spent) the route decides: with a dead letter queue, the message
  goes there once its retries are spent (``max_retries``; a spent ``retry_on`` counts as spent); without
  one, it is retried after the route's backoff, for as long as it fails.
- A *poison* message can never run: anything that makes it undecodable (not JSON, a field of the wrong
  type, arguments nested too deeply, an unsupported envelope version, an unregistered job, arguments that
  cannot be loaded such as a deleted model row), whatever the exception. It goes to the dead letter queue
  at once, or is logged at ERROR with its coordinates and skipped when the route has none. Only an error
  that may pass (``serializer.may_pass``: the database is down) follows the route's retry policy.
- SystemExit, KeyboardInterrupt, MemoryError: not marked, not retried, not dead-lettered; the worker stops
  (exit status 3) and the job runs again after a restart.

Deciding and delivering are separate: once a message is to be dead-lettered, the decision is kept and only
the write is retried, never the job. Building the copy cannot fail (every field has a fallback); a write
that fails for a reason that may pass (the broker is away) is retried after a backoff; a copy the broker
can never accept (too large) is replaced by a stub without the value (``deadletter.stub_of``), logged at
ERROR; if not even the stub can be written, the message is logged at ERROR and skipped. The dead letter
is acknowledged by the broker before the message is marked, and nothing is dead-lettered for a partition
this worker no longer owns.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.dispatch import Signal

from .. import signals
from ..clock import seconds_until
from ..conf import Backoff, KafkaJobsSettings
from ..deadletter.delivery import DeadLetterDelivery, Delivered, PendingDeadLetter
from ..deadletter.text import class_name, exception_message, safe_repr
from ..delays.retry import retry_message
from ..exceptions import EnqueueError
from ..execution import forget_thread_state, run_job, worker_thread_context
from ..headers import ID_HEADER, JOB_HEADER
from ..job import Job, MessageInfo
from ..producer import get_producer
from ..retry import Action, Decision
from ..routing import Route, get_routes
from ..serializer import Envelope, get_serializer, may_pass
from ..topics import dead_letter_producer_limit
from .connections import close_old_connections

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


def _header(message: Any, name: str) -> str | None:
    for key, value in message.headers() or []:
        if key == name and value is not None:
            return bytes(value).decode("utf-8", "replace")
    return None


@dataclasses.dataclass(frozen=True)
class Subject:
    """What a log line is about: the job (or what its message headers say) and its message coordinates."""

    job_name: str
    job_id: str
    topic: str
    partition: int
    offset: int
    attempt: int

    @classmethod
    def of(cls, message: Any, job: Job | None, attempt: int) -> Subject:
        """Describe ``message`` (and its decoded ``job``, if any) at execution number ``attempt``."""
        name = job.job_name if job is not None else _header(message, JOB_HEADER) or "?"
        job_id = job.job_id if job is not None else _header(message, ID_HEADER) or "?"
        return cls(name, job_id, message.topic(), message.partition(), message.offset(), attempt)

    def __str__(self) -> str:
        return f"{self.job_name} id={self.job_id} {self.topic}/{self.partition}@{self.offset} attempt={self.attempt}"

    @property
    def extra(self) -> dict[str, Any]:
        """``extra`` for logging calls, so structured handlers get the fields separately."""
        # Not dataclasses.asdict(), which deep-copies each field: this runs for every job, even with INFO off.
        return {"kafka_job": {name: getattr(self, name) for name in _SUBJECT_FIELDS}}


_SUBJECT_FIELDS = tuple(field.name for field in dataclasses.fields(Subject))
_DONE = Outcome(Verdict.DONE)  # the outcome of almost every job: made once (Outcome is frozen)


def describe(message: Any, job: Job | None = None, attempt: int | None = None) -> str:
    """Return the log prefix naming the job (id, name), its message coordinates and the attempt."""
    return str(Subject.of(message, job, attempt if attempt is not None else 1))


def _info(message: Any) -> MessageInfo:
    return MessageInfo(message.topic(), message.partition(), message.offset(), message.key())


def _send(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Send an instrumentation signal; a failing receiver is logged and cannot break failure handling."""
    if signal.receivers:
        forget_thread_state()  # a receiver may change the thread's language or time zone
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("Signal receiver %r raised %r (ignored)", receiver, result, exc_info=result)


def _report_failure(job: Job, exc: BaseException, *, will_retry: bool) -> None:
    """Send ``job_failed`` for a run of ``job`` that raised ``exc``."""
    _send(
        signals.job_failed,
        type(job),
        job=job,
        message=job.message,
        duration=job.last_duration,
        exception=exc,
        will_retry=will_retry,
    )


class Executor:
    """Runs messages of routed topics for one worker process."""

    def __init__(self, settings: KafkaJobsSettings) -> None:
        self.settings = settings
        self.serializer = get_serializer()
        self.dead_letters = DeadLetterDelivery(settings, lambda: dead_letter_producer_limit(settings, get_routes()))

    def backoff_for(self, route: Route) -> Backoff:
        """Return the route's backoff, or the global one."""
        return route.backoff or self.settings.backoff

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget what was decided for messages of ``(topic, partition)`` pairs this worker lost."""
        self.dead_letters.forget_partitions(partitions)

    def close(self) -> None:
        """Release the dead letter producer, if one was made."""
        self.dead_letters.close()

    def process(
        self,
        message: Any,
        route: Route,
        failures: int,
        owned: Callable[[], bool],
        *,
        envelope: Envelope | None = None,
    ) -> Outcome:
        """Run the job in ``message``; ``failures`` counts its earlier failed runs.

        ``owned()`` tells whether this worker still owns the partition (checked before dead-lettering);
        ``envelope`` is the message already decoded, if it was (virtual partitions).
        Never raises: whatever goes wrong becomes an outcome, so a job thread cannot die.
        """
        attempt = failures + 1
        dead_letters = self.dead_letters
        try:
            if dead_letters.waiting():  # rare: only while a dead letter could not be written yet
                key = (message.topic(), message.partition(), message.offset())
                pending = dead_letters.pending(key)
                if pending is not None:  # the job ran and its fate is decided: only its dead letter is left to write
                    return self._deliver(message, route, key, pending, owned)
            return self._process(message, route, attempt, owned, envelope)
        except CRITICAL as exc:  # outside the job itself, e.g. MemoryError while decoding
            logger.critical(
                "%s: %s while handling the message: stopping the worker; it is not marked and runs again after restart",
                describe(message, None, attempt),
                type(exc).__name__,
            )
            return Outcome(Verdict.CRITICAL, error=exc)
        except Exception as exc:  # a bug here, never the job's: keep the message and try again later
            delay = self.backoff_for(route).delay(attempt)
            decided = dead_letters.pending((message.topic(), message.partition(), message.offset())) is not None
            logger.exception(
                "%s: internal error while handling the message (%s); retrying %s in %.2fs",
                describe(message, None, attempt),
                safe_repr(exc),
                "its dead letter (not the job)" if decided else "it",
                delay,
            )
            return Outcome(Verdict.RETRY, delay=delay, counts_as_failure=not decided, error=exc)

    def _process(
        self, message: Any, route: Route, attempt: int, owned: Callable[[], bool], envelope: Envelope | None = None
    ) -> Outcome:
        close_old_connections()  # loading model arguments queries the database
        try:
            if envelope is None:
                envelope = self.serializer.loads(message.value())
            job = envelope.to_job()
        except CRITICAL:
            raise
        except Exception as exc:
            if may_pass(exc):  # e.g. the database is down: the route's policy applies
                return self._unloadable(message, route, exc, attempt, owned)
            return self._poison(message, route, exc, owned)  # whatever it is, this message can never run
        if job.scheduled_at is not None:
            wait = seconds_until(job.scheduled_at)
            if wait > 0:
                return Outcome(Verdict.RETRY, delay=wait, counts_as_failure=False)
        attempt += job.executions  # runs before this message: a job retried through the delay tiers
        job.executions = attempt - 1  # run_job counts this execution
        job.message = _info(message)
        # Building the log subject costs as much as a no-op job: only when the lines are shown.
        subject = Subject.of(message, job, attempt) if logger.isEnabledFor(logging.INFO) else None
        if subject is not None:
            logger.info("%s started", subject, extra=subject.extra)
        try:
            run_job(job, report_failure=False, context=worker_thread_context)
        except CRITICAL as exc:
            subject = Subject.of(message, job, attempt)
            logger.critical(
                "%s raised %s: stopping the worker; the job is not marked and runs again after restart",
                subject,
                type(exc).__name__,
                extra=subject.extra,
            )
            _report_failure(job, exc, will_retry=False)
            return Outcome(Verdict.CRITICAL, error=exc)
        except Exception as exc:
            return self._failed(message, route, job, exc, owned)
        finally:
            close_old_connections()
        if subject is not None:
            logger.info("%s succeeded in %.3fs", subject, job.last_duration or 0.0, extra=subject.extra)
        return _DONE

    def _decide(self, subject: Subject, job: Job, exc: Exception, attempt: int) -> Decision:
        """Ask the job's rules; a rule that raises (a ``wait`` callable, say) leaves it to the route."""
        try:
            return job.retry_policy.decide(exc, attempt)
        except Exception as bug:
            logger.exception(
                "%s: the retry_on/discard_on rules of %s raised %s; the route's policy decides instead",
                subject,
                class_name(job),
                safe_repr(bug),
                extra=subject.extra,
            )
            return Decision(Action.ESCALATE)

    def _failed(self, message: Any, route: Route, job: Job, exc: Exception, owned: Callable[[], bool]) -> Outcome:
        attempt = job.executions
        subject = Subject.of(message, job, attempt)
        decision = self._decide(subject, job, exc, attempt)
        if decision.action is Action.DISCARD:
            _report_failure(job, exc, will_retry=False)
            logger.warning(
                "%s failed with %s and was discarded (discard_on)", subject, safe_repr(exc), extra=subject.extra
            )
            _send(signals.job_discarded, type(job), job=job, message=job.message, exception=exc)
            return Outcome(Verdict.DONE, error=exc)
        if decision.action is Action.RETRY:
            return self._retry(message, route, subject, job, exc, decision.delay, "retry_on", owned)
        dlq = route.dead_letter_queue
        retries_spent = decision.rule is not None or (dlq is not None and attempt > dlq.max_retries)
        if dlq is not None and retries_spent:
            spent = "retry_on attempts" if decision.rule is not None else f"max_retries={dlq.max_retries}"
            return self._dead_letter(
                message,
                route,
                PendingDeadLetter(job, exc, attempt),
                owned,
                ("%s failed with %s; retries spent (%s)", subject, safe_repr(exc), spent),
            )
        return self._retry(message, route, subject, job, exc, self.backoff_for(route).delay(attempt), "backoff", owned)

    def _retry(
        self,
        message: Any,
        route: Route,
        subject: Subject,
        job: Job,
        exc: Exception,
        delay: float,
        why: str,
        owned: Callable[[], bool],
    ) -> Outcome:
        _report_failure(job, exc, will_retry=True)
        if route.retry == "delay" and owned() and self._enqueue_retry(message, subject, job, delay):
            logger.warning(
                "%s failed with %s; retrying in %.2fs through the delay tiers (%s)",
                subject,
                safe_repr(exc),
                delay,
                why,
                exc_info=exc,
                extra=subject.extra,
            )
            _send(signals.job_retried, type(job), job=job, message=job.message, exception=exc, delay=delay)
            return Outcome(Verdict.DONE, error=exc)  # committed: the partition keeps flowing
        logger.warning(
            "%s failed with %s; retrying in %.2fs (%s)",
            subject,
            safe_repr(exc),
            delay,
            why,
            exc_info=exc,
            extra=subject.extra,
        )
        _send(signals.job_retried, type(job), job=job, message=job.message, exception=exc, delay=delay)
        return Outcome(Verdict.RETRY, delay=delay, error=exc)

    def _enqueue_retry(self, message: Any, subject: Subject, job: Job, delay: float) -> bool:
        """Enqueue ``job`` again through the delay tiers (route ``retry="delay"``); False if Kafka refused."""
        try:
            get_producer().produce([retry_message(message, job, delay, self.settings)], sync=True)
        except EnqueueError as produce_error:
            logger.error(
                "%s: could not enqueue the retry through the delay tiers (%s); it waits at the head of its "
                "partition instead",
                subject,
                produce_error,
                extra=subject.extra,
            )
            return False
        return True

    def _unloadable(
        self, message: Any, route: Route, exc: Exception, attempt: int, owned: Callable[[], bool]
    ) -> Outcome:
        """The job could not be built for a reason that may pass: the route's retry policy applies."""
        subject = Subject.of(message, None, attempt)
        dlq = route.dead_letter_queue
        if dlq is not None and attempt > dlq.max_retries:
            return self._dead_letter(
                message,
                route,
                PendingDeadLetter(None, exc, attempt),
                owned,
                ("%s: loading the job failed with %s; retries spent", subject, safe_repr(exc)),
            )
        delay = self.backoff_for(route).delay(attempt)
        logger.warning(
            "%s: loading the job failed with %s; retrying in %.2fs (backoff)",
            subject,
            safe_repr(exc),
            delay,
            exc_info=exc,
            extra=subject.extra,
        )
        return Outcome(Verdict.RETRY, delay=delay, error=exc)

    def _poison(self, message: Any, route: Route, exc: Exception, owned: Callable[[], bool]) -> Outcome:
        """A message that can never succeed: dead-letter it at once, or log it for an operator and move on."""
        subject = Subject.of(message, None, 1)
        reason = f"{class_name(exc).rpartition('.')[2]}: {exception_message(exc)}"
        if route.dead_letter_queue is not None:
            return self._dead_letter(
                message,
                route,
                PendingDeadLetter(None, exc, 1),
                owned,
                ("%s cannot be run (%s); sending it to the dead letter queue without retrying", subject, reason),
            )
        raw = message.value()
        logger.error(
            "%s cannot be run and is SKIPPED (%s). The route has no dead_letter_queue; the message stays "
            "in the topic at this offset for inspection. key=%r value[:500]=%r",
            subject,
            reason,
            message.key(),
            raw[:500] if raw else raw,
            extra=subject.extra,
        )
        _send(signals.job_discarded, Job, job=None, message=_info(message), exception=exc)
        return Outcome(Verdict.DONE, error=exc)

    def _dead_letter(
        self,
        message: Any,
        route: Route,
        pending: PendingDeadLetter,
        owned: Callable[[], bool],
        why: tuple[Any, ...],
    ) -> Outcome:
        """Record the decision to dead-letter ``message`` (logging ``why``), then write the dead letter."""
        subject = Subject.of(message, pending.job, pending.attempts)
        key = (message.topic(), message.partition(), message.offset())
        self.dead_letters.decide(key, pending)
        if pending.job is not None:
            _report_failure(pending.job, pending.error, will_retry=False)
        logger.error(*why, exc_info=pending.error, extra=subject.extra)
        return self._deliver(message, route, key, pending, owned)

    def _deliver(
        self,
        message: Any,
        route: Route,
        key: tuple[str, int, int],
        pending: PendingDeadLetter,
        owned: Callable[[], bool],
    ) -> Outcome:
        """Write the dead letter of a decided message (see ``deadletter.delivery``) and say what follows."""
        dlq = route.dead_letter_queue
        assert dlq is not None
        subject = Subject.of(message, pending.job, pending.attempts)
        delivered, delay = self.dead_letters.deliver(
            message,
            dlq.topic,
            key,
            pending,
            owned=owned,
            backoff=self.backoff_for(route),
            subject=subject,
            extra=subject.extra,
        )
        if delivered in (Delivered.LATER, Delivered.DISOWNED):
            return Outcome(Verdict.RETRY, delay=delay, counts_as_failure=False, error=pending.error)
        sender = type(pending.job) if pending.job is not None else Job
        if delivered is Delivered.NOTHING:
            _send(signals.job_discarded, sender, job=pending.job, message=_info(message), exception=pending.error)
            return Outcome(Verdict.DONE, error=pending.error)
        logger.error(
            "%s moved to the dead letter queue %s after %d attempt(s)%s",
            subject,
            dlq.topic,
            pending.attempts,
            " as a stub (without its value)" if delivered is Delivered.STUB else "",
            extra=subject.extra,
        )
        _send(
            signals.job_dead_lettered,
            sender,
            job=pending.job,
            message=_info(message),
            exception=pending.error,
            dlq_topic=dlq.topic,
        )
        return Outcome(Verdict.DONE, error=pending.error)
