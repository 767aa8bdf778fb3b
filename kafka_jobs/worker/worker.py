"""The worker: one poll thread (this one) and ``concurrency`` job threads, from start to a graceful stop.

Each turn of the poll loop fetches messages, starts due retries, pauses or resumes partitions, commits
what moved and checks ``--burst`` / ``--max-jobs``. Periodic work of the poll thread belongs in ``_turn``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ..conf import KafkaJobsSettings
from ..routing import Route
from .committer import Committer
from .consumer import ConsumerFactory, JobConsumer, KafkaConsumerFactory
from .executor import Executor
from .jobthreads import JobThreads
from .ledger import Ledger
from .listener import Listener
from .observer import WorkerObserver
from .shutdown import ExitCode, Shutdown

logger = logging.getLogger("kafka_jobs.worker")

STOP_POLL_TIMEOUT = 0.1  # while waiting for running jobs at shutdown


class Worker:
    """Consume the given routes and run their jobs until asked to stop; ``run()`` returns the exit code.

    ``consumer_factory`` builds the consumer in ``run()`` (default: ``KafkaConsumerFactory(settings)``);
    ``executor`` runs one message (default: ``Executor(settings)``). Tests pass fakes of both.
    ``observer`` (``kafka_jobs.ops``: reports, queue pauses, health) is called on the poll thread.
    """

    def __init__(
        self,
        settings: KafkaJobsSettings,
        routes: Iterable[Route],
        *,
        concurrency: int | None = None,
        max_jobs: int | None = None,
        burst: bool = False,
        shutdown: Shutdown | None = None,
        consumer_factory: ConsumerFactory | None = None,
        executor: Executor | None = None,
        observer: WorkerObserver | None = None,
    ) -> None:
        self.settings = settings
        self.routes = {route.topic: route for route in routes}
        self.concurrency = concurrency or settings.concurrency
        self.max_jobs = max_jobs
        self.burst = burst
        self.shutdown = shutdown or Shutdown()
        self.consumer_factory = consumer_factory or KafkaConsumerFactory(settings)
        self.ledger = Ledger(settings.max_buffered_messages, max_jobs)
        self.executor = executor or Executor(settings)
        self.observer = observer
        self.threads = JobThreads(self.ledger, self.executor, self.shutdown, self.concurrency)
        # Built by run():
        self.consumer: JobConsumer
        self.committer: Committer
        self.listener: Listener

    def run(self) -> ExitCode:
        """Join the group, process jobs until stopped, then shut down gracefully."""
        self.consumer = self.consumer_factory(self._on_commit)
        self.committer = Committer(self.consumer, self.ledger, self.settings.commit_interval)
        self.listener = Listener(
            self.consumer,
            self.ledger,
            self.committer,
            self.settings,
            self.routes,
            on_forget=self.executor.forget_partitions,
        )
        if self.observer is not None:
            self.observer.started(self)  # before the first assignment: a paused queue stays paused
        self.listener.subscribe()
        logger.info(
            "Worker started: group %s, topics %s, %d thread(s)",
            self.settings.group_id,
            ", ".join(self.routes),
            self.concurrency,
        )
        self.threads.start()
        try:
            while not self.shutdown.check():
                self._turn()
            code = self._stop()
        finally:
            self.ledger.close()
        if self.observer is not None:
            self.observer.stopped(code)
        return code

    def _turn(self) -> None:
        """One turn of the poll loop."""
        self.listener.poll()
        self.ledger.schedule_due()
        self.listener.flow_control()
        self.committer.commit()
        self._check_done()
        if self.observer is not None:
            self.observer.turn()

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self.committer.on_commit(err, partitions)

    def _check_done(self) -> None:
        ledger = self.ledger
        with ledger.cond:
            if self.max_jobs is not None and ledger.completed >= self.max_jobs:
                reason = f"--max-jobs {self.max_jobs} reached"
            elif self.burst and ledger.idle():
                reason = "--burst: no more jobs"
            else:
                return
        self.shutdown.request(reason)

    def _stop(self) -> ExitCode:
        """Stop starting jobs, wait for running ones (bounded), commit, leave the group."""
        ledger = self.ledger
        if self.observer is not None:
            self.observer.stopping()
        running = ledger.stop_starting()
        if running:
            logger.info("Waiting up to %.0fs for %d running job(s) to finish", self.settings.shutdown_timeout, running)
        deadline = time.monotonic() + self.settings.shutdown_timeout
        with contextlib.suppress(KafkaException):
            self.consumer.pause(self.consumer.assignment())
        while ledger.running and time.monotonic() < deadline:
            self.consumer.poll(STOP_POLL_TIMEOUT)  # keeps the membership; fetched messages are ignored
            self.committer.commit()
        timed_out = ledger.running > 0
        self.listener.abandon_running = timed_out
        with ledger.cond:
            states = list(ledger.partitions.values())
        self.committer.commit_sync(states)
        self.committer.closing = True
        self.consumer.close()
        self.executor.close()
        if timed_out:
            logger.error("Shutdown timeout: %d job(s) still running were not marked and will run again", ledger.running)
            # A crash or a critical job error says more about why than the timeout it led to.
            return self.shutdown.exit_code if self.shutdown.exit_code is not ExitCode.OK else ExitCode.SHUTDOWN_TIMEOUT
        logger.info(
            "Worker stopped (%s); %d job(s) completed, %d offset commit(s); at most %d message(s) buffered per "
            "partition (limit %d)",
            self.shutdown.reason,
            ledger.completed,
            self.committer.sent,
            ledger.peak_buffered,
            self.settings.max_buffered_messages,
        )
        return self.shutdown.exit_code
