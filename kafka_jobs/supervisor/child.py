"""The worker-process side of ``--processes``: what a supervised ``runkafkaworker`` does differently.

The supervisor passes five environment variables (read once, then removed so that processes the worker
starts do not believe they are supervised):

- ``KAFKA_JOBS_WORKER_INDEX``: the child's number (1..N), named in every kafka_jobs log line;
- ``KAFKA_JOBS_SUPERVISOR_PID``: the supervisor's pid;
- ``KAFKA_JOBS_LIFELINE_FD``: the read end of a pipe whose write end only the supervisor holds. It reads
  end-of-file when the supervisor is gone, however it died: the child then exits at once. (On Linux the
  kernel also kills the child with ``PR_SET_PDEATHSIG``; the pipe covers other systems, and a supervisor
  that died before the child set it.);
- ``KAFKA_JOBS_READY_FD``: the write end of a pipe the child writes one byte to once it has passed its
  start-up checks and is about to join the consumer group. A child that dies before that *failed at start*
  (see policy.py);
- ``KAFKA_JOBS_START_FD``: the read end of a pipe the supervisor writes one byte to (or closes) when the
  child may join the group. The children started together wait for each other there, so they join as one
  group generation and start consuming together: a child that joined alone would take every partition,
  start on them, and give half of them back in a second rebalance when the next one joins (on Apache
  Kafka, ``group.initial.rebalance.delay.ms`` covers only the first join of an empty group; on Tansu each
  member's join completes about half a session timeout after its own request, so joins a few hundred ms
  apart started consuming that far apart). A restarted child is not held back.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..worker import ExitCode

if TYPE_CHECKING:
    from ..worker.observer import WorkerObserver
    from ..worker.worker import Worker

ENV_INDEX = "KAFKA_JOBS_WORKER_INDEX"
ENV_SUPERVISOR_PID = "KAFKA_JOBS_SUPERVISOR_PID"
ENV_LIFELINE_FD = "KAFKA_JOBS_LIFELINE_FD"
ENV_READY_FD = "KAFKA_JOBS_READY_FD"
ENV_START_FD = "KAFKA_JOBS_START_FD"
READY = b"R"
START = b"S"

logger = logging.getLogger("kafka_jobs.supervisor")


@dataclasses.dataclass
class SupervisedChild:
    """This process as one of a supervisor's worker processes."""

    index: int
    supervisor_pid: int
    lifeline_fd: int
    ready_fd: int | None
    start_fd: int | None = None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] = os.environ) -> SupervisedChild | None:
        """Return this process's supervision, or ``None`` if no supervisor started it; consume the variables."""
        if ENV_INDEX not in environ:
            return None
        names = (ENV_INDEX, ENV_SUPERVISOR_PID, ENV_LIFELINE_FD, ENV_READY_FD, ENV_START_FD)
        values = {name: environ.pop(name, "") for name in names}
        try:
            start_fd = int(values[ENV_START_FD] or -1)
            return cls(
                index=int(values[ENV_INDEX]),
                supervisor_pid=int(values[ENV_SUPERVISOR_PID]),
                lifeline_fd=int(values[ENV_LIFELINE_FD]),
                ready_fd=int(values[ENV_READY_FD]),
                start_fd=start_fd if start_fd >= 0 else None,
            )
        except ValueError:
            raise ConfigurationError(
                f"{ENV_INDEX} is set, so this worker was started by 'runkafkaworker --processes', but the "
                f"supervisor's other variables are missing or not numbers ({values}). Do not set {ENV_INDEX} "
                "yourself."
            ) from None

    @property
    def label(self) -> str:
        """Return how log lines name this process."""
        return f"worker {self.index} pid {os.getpid()}"

    def start(self) -> None:
        """Name this process in kafka_jobs log lines and exit at once when the supervisor is gone."""
        name_in_logs(self.label)
        if os.getppid() != self.supervisor_pid:
            _exit_orphaned(f"its supervisor (pid {self.supervisor_pid}) was gone before it started")
        thread = threading.Thread(target=self._watch, name="kafka-jobs-lifeline", daemon=True)
        thread.start()

    def report_ready(self) -> None:
        """Tell the supervisor this worker passed its start-up checks (once)."""
        if self.ready_fd is None:
            return
        fd, self.ready_fd = self.ready_fd, None
        try:
            os.write(fd, READY)
        except OSError:
            pass  # the supervisor is gone: the lifeline ends this process
        finally:
            os.close(fd)

    def join_together(self) -> None:
        """Report ready, then wait until the supervisor lets this child join the group (once).

        The supervisor answers when every child started with this one is ready, or after its start timeout;
        end of file (a supervisor that stops, or is gone) lets the child go on too: a stop requested
        meanwhile ends the worker right after it joined, and the lifeline ends an orphan.
        """
        self.report_ready()
        if self.start_fd is None:
            return
        fd, self.start_fd = self.start_fd, None
        try:
            os.read(fd, 1)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _watch(self) -> None:
        while True:
            try:
                if not os.read(self.lifeline_fd, 1):
                    break
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
                continue
            except OSError:
                break
        _exit_orphaned(f"its supervisor (pid {self.supervisor_pid}) is gone")


class JoinTogether:
    """The worker's observer, with the child's ``join_together()`` between the worker's start and its group join.

    ``Worker.run`` calls ``started`` once its consumer exists and the observer caught up with the queue
    commands, right before it subscribes: the last moment a child's start-up time can differ from the others'.
    """

    def __init__(self, observer: WorkerObserver, child: SupervisedChild) -> None:
        self.observer = observer
        self.child = child

    def started(self, worker: Worker) -> None:
        """Start the observer; then report ready and wait for the supervisor's start."""
        self.observer.started(worker)
        self.child.join_together()

    def turn(self) -> None:
        """Pass the turn on."""
        self.observer.turn()

    def stopping(self) -> None:
        """Pass the stop on."""
        self.observer.stopping()

    def stopped(self, code: ExitCode) -> None:
        """Pass the end on."""
        self.observer.stopped(code)


def _exit_orphaned(why: str) -> None:
    """Exit at once without taking locks (this may run on any thread): no worker outlives its supervisor."""
    os.write(2, f"kafka_jobs worker pid {os.getpid()}: {why}; exiting at once, running jobs are not marked.\n".encode())
    os._exit(ExitCode.FORCED)


def name_in_logs(label: str) -> None:
    """Prefix the message of every ``kafka_jobs`` log record made in this process with ``[label]``.

    A record factory rather than a filter or formatter: it applies whatever handlers and format the
    project's LOGGING sets up, to the records of every ``kafka_jobs.*`` logger.
    """
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    prefix = f"[{label}] "

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, str) and (record.name == "kafka_jobs" or record.name.startswith("kafka_jobs.")):
            record.msg = prefix + record.msg
        return record

    logging.setLogRecordFactory(factory)
