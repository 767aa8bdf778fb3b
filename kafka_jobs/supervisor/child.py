"""The worker-process side of ``--processes``: what a supervised ``runkafkaworker`` does differently.

The supervisor passes four environment variables (read once, then removed so that processes the worker
starts do not believe they are supervised):

- ``KAFKA_JOBS_WORKER_INDEX``: the child's number (1..N), named in every kafka_jobs log line;
- ``KAFKA_JOBS_SUPERVISOR_PID``: the supervisor's pid;
- ``KAFKA_JOBS_LIFELINE_FD``: the read end of a pipe whose write end only the supervisor holds. It reads
  end-of-file when the supervisor is gone, however it died: the child then exits at once. (On Linux the
  kernel also kills the child with ``PR_SET_PDEATHSIG``; the pipe covers other systems, and a supervisor
  that died before the child set it.);
- ``KAFKA_JOBS_READY_FD``: the write end of a pipe the child writes one byte to once it has passed its
  start-up checks and starts consuming. A child that dies before that *failed at start* (see policy.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

from ..exceptions import ConfigurationError
from ..worker import ExitCode

ENV_INDEX = "KAFKA_JOBS_WORKER_INDEX"
ENV_SUPERVISOR_PID = "KAFKA_JOBS_SUPERVISOR_PID"
ENV_LIFELINE_FD = "KAFKA_JOBS_LIFELINE_FD"
ENV_READY_FD = "KAFKA_JOBS_READY_FD"
READY = b"R"

logger = logging.getLogger("kafka_jobs.supervisor")


@dataclasses.dataclass
class SupervisedChild:
    """This process as one of a supervisor's worker processes."""

    index: int
    supervisor_pid: int
    lifeline_fd: int
    ready_fd: int | None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] = os.environ) -> SupervisedChild | None:
        """Return this process's supervision, or ``None`` if no supervisor started it; consume the variables."""
        if ENV_INDEX not in environ:
            return None
        values = {
            name: environ.pop(name, "") for name in (ENV_INDEX, ENV_SUPERVISOR_PID, ENV_LIFELINE_FD, ENV_READY_FD)
        }
        try:
            return cls(
                index=int(values[ENV_INDEX]),
                supervisor_pid=int(values[ENV_SUPERVISOR_PID]),
                lifeline_fd=int(values[ENV_LIFELINE_FD]),
                ready_fd=int(values[ENV_READY_FD]),
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
