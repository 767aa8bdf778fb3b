"""The worker's side of queue commands: a thread following the commands topic, and the producer of reports.

The thread keeps the latest command of each queue (``kafka_jobs.ops.control`` writes them); the poll
thread applies them (``WorkerMonitor``). It also serves the report producer's delivery callbacks.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import KafkaException, Producer

from ..conf import KafkaJobsSettings
from ..exceptions import KafkaJobsError, ReportError
from ..producer import producer_config
from .control import COMMANDS_READ_LIMIT, QueueCommand
from .latest import LatestReader
from .topics import commands_topic

logger = logging.getLogger("kafka_jobs.ops")

# How often the thread looks for new commands: a pause reaches the poll thread within about this long.
COMMAND_POLL_INTERVAL = 1.0
JOIN_TIMEOUT = 10.0


class CommandWatcher:
    """Follows the commands topic on a thread of its own; ``commands`` and ``version`` are read by the poll thread."""

    def __init__(self, settings: KafkaJobsSettings) -> None:
        self.settings = settings
        self.commands: dict[str, QueueCommand] = {}
        self.version = 0  # incremented on every change of ``commands``
        self.caught_up = threading.Event()  # the topic was read to its end once
        self.reader = LatestReader(settings, commands_topic(settings), limit=COMMANDS_READ_LIMIT, fetch_wait_ms=500)
        self.producer: Any = Producer({**producer_config(settings), "enable.idempotence": False, "acks": 1})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-jobs-ops", daemon=True)
        self._delivery_failed = False

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read()
            except (KafkaException, KafkaJobsError) as exc:  # the broker is away: keep the last known state
                logger.warning("Could not read queue commands (%s); retrying", exc)
                self._stop.wait(5.0)
            except Exception:  # a bug here must not end the thread: pauses would silently stop applying
                logger.exception("Reading queue commands failed; retrying")
                self._stop.wait(5.0)
            self.producer.poll(0)
            self._stop.wait(COMMAND_POLL_INTERVAL)

    def _read(self) -> None:
        latest = self.reader.refresh(timeout=2.0)
        commands = {}
        for key, value in latest.items():
            try:
                command = QueueCommand.from_json(value)
            except ReportError as exc:
                logger.warning("Ignoring an undecodable queue command %r: %s", key, exc)
                continue
            commands[command.queue] = command
        if commands != self.commands:
            self.commands = commands
            self.version += 1
        self.caught_up.set()

    def produce(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce a record without waiting (a report); a failure is logged once, never raised."""
        try:
            self.producer.produce(topic, value, key=key, on_delivery=self._delivered)
        except (BufferError, KafkaException) as exc:
            self._failed(str(exc))

    def _delivered(self, err: Any, _message: Any) -> None:
        if err is not None:
            self._failed(err.str())
        elif self._delivery_failed:
            self._delivery_failed = False
            logger.info("Worker reports are delivered again")

    def _failed(self, why: str) -> None:
        if not self._delivery_failed:
            self._delivery_failed = True
            logger.warning("A worker report could not be delivered (%s); the dashboard shows an older one", why)

    def close(self, flush_timeout: float = 5.0) -> None:
        """Stop the thread, deliver what is left (the last report), close the consumer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT)
        self.producer.flush(flush_timeout)
        self.reader.close()
