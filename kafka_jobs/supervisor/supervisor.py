"""The supervisor of ``runkafkaworker --processes N``: N worker processes of one group, kept running.

One thread, no Kafka client, no database connection: it starts the children, restarts those that die
(``policy.py``), forwards the first SIGTERM/SIGINT as SIGTERM for a graceful stop, kills them at once on a
second signal, and exits with a summary of their statuses. Signal handlers only record the signal; a
``set_wakeup_fd`` pipe wakes the ``select`` loop, which also watches the children's ready pipes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

from ..devbroker import die_with_parent
from ..exceptions import KafkaJobsError
from ..worker import ExitCode
from .child import ENV_INDEX, ENV_LIFELINE_FD, ENV_READY_FD, ENV_SUPERVISOR_PID, READY
from .policy import RestartPolicy, Restarts, describe_status, final_status, summarise

logger = logging.getLogger("kafka_jobs.supervisor")

STOP_GRACE = 10.0  # past SHUTDOWN_TIMEOUT: a child's last commit, leaving its groups, closing its clients
LOOP_TIMEOUT = 1.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SupervisorGaveUp(KafkaJobsError, RuntimeError):
    """Worker processes kept failing at start; the supervisor stopped the others and exits with status 1."""


@dataclasses.dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    ready_fd: int | None  # read end; None once closed

    @property
    def name(self) -> str:
        return f"worker {self.index} (pid {self.process.pid})"


class Supervisor:
    """Run ``processes`` copies of ``command`` until stopped; ``run()`` returns the exit status.

    Args:
        command: the child's command line (see commandline.py).
        processes: how many children run at once.
        shutdown_timeout: the children's ``SHUTDOWN_TIMEOUT``; the supervisor waits that long plus
            ``STOP_GRACE`` after forwarding a stop, then kills what is left.
        burst: a child that exits 0 is done (``--burst``), not restarted; the supervisor exits when all are.
        env: the children's environment (default: this process's).
    """

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        shutdown_timeout: float,
        burst: bool = False,
        policy: RestartPolicy | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.command = list(command)
        self.processes = processes
        self.shutdown_timeout = shutdown_timeout
        self.burst = burst
        self.env = dict(os.environ if env is None else env)
        self.clock = clock
        self.restarts = Restarts(policy or RestartPolicy(), clock)
        self.children: dict[int, _Child] = {}
        self.restart_at: dict[int, float] = {}  # slot -> when to start it again
        self.final: dict[int, ExitCode] = {}  # slot -> status it ended with (done, or stopped)
        self.stop_deadline: float | None = None
        self.gave_up: str | None = None
        self.forced = False
        self._signals: list[int] = []
        self._handled_signals = 0

    def run(self) -> ExitCode:
        """Start the children and supervise them until they all ended; raise ``SupervisorGaveUp`` if they
        kept failing at start."""
        if threading.active_count() > 1:  # subprocess's preexec_fn is not safe with other threads
            logger.warning("%d other thread(s) run in the supervisor", threading.active_count() - 1)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self._lifeline_r, self._lifeline_w = os.pipe()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (*_STOP_SIGNALS, signal.SIGCHLD)}
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        try:
            logger.info("Supervisor pid %d starting %d worker process(es)", os.getpid(), self.processes)
            for index in range(1, self.processes + 1):
                self._start(index)
            while self.children or self.restart_at:
                self._wait(wake_r)
                self._react_to_signals()
                self._read_ready()
                self._reap()
                self._enforce_stop_deadline()
                self._start_due()
        finally:
            self._kill_all()  # only after an error here: never leave a child behind
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (wake_r, wake_w, self._lifeline_r, self._lifeline_w):
                os.close(fd)
        if self.gave_up is not None:
            raise SupervisorGaveUp(self.gave_up)
        code = ExitCode.FORCED if self.forced else summarise(self.final.values())
        logger.info("Supervisor stopped: %d worker process(es) ended; exit status %d", len(self.final), code)
        return code

    # --- children ---------------------------------------------------------------------------------------

    def _start(self, index: int) -> None:
        ready_r, ready_w = os.pipe()
        env = {
            **self.env,
            ENV_INDEX: str(index),
            ENV_SUPERVISOR_PID: str(os.getpid()),
            ENV_LIFELINE_FD: str(self._lifeline_r),
            ENV_READY_FD: str(ready_w),
        }
        try:
            process = subprocess.Popen(
                self.command,
                env=env,
                pass_fds=(self._lifeline_r, ready_w),
                process_group=0,  # a terminal's Ctrl-C reaches the supervisor only; it forwards the stop
                preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - the supervisor runs no other thread
            )
        except OSError as exc:
            os.close(ready_r)
            raise SupervisorGaveUp(f"Could not start worker {index} ({' '.join(self.command)}): {exc}") from exc
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        os.set_blocking(ready_r, False)
        child = _Child(index, process, ready_r)
        self.children[index] = child
        self.restarts.started(index)
        logger.info("Started %s", child.name)

    def _read_ready(self, child: _Child | None = None) -> None:
        for each in [child] if child is not None else list(self.children.values()):
            if each.ready_fd is None:
                continue
            try:
                data = os.read(each.ready_fd, 16)
            except BlockingIOError:
                continue
            if READY in data:
                self.restarts.ready(each.index)
                logger.info("%s is running", each.name)
            self._close_ready(each)  # the child writes once; end of file means it died first

    def _close_ready(self, child: _Child) -> None:
        if child.ready_fd is not None:
            os.close(child.ready_fd)
            child.ready_fd = None

    def _reap(self) -> None:
        for index, child in list(self.children.items()):
            returncode = child.process.poll()
            if returncode is None:
                continue
            self._read_ready(child)  # a ready byte not read yet
            self._close_ready(child)
            del self.children[index]
            self._ended(child, returncode)

    def _ended(self, child: _Child, returncode: int) -> None:
        status = describe_status(returncode)
        if self.stop_deadline is not None:
            self.final[child.index] = final_status(returncode)
            log = logger.info if self.final[child.index] is ExitCode.OK else logger.warning
            log("%s %s", child.name, status)
            return
        if self.burst and returncode == ExitCode.OK:
            self.final[child.index] = ExitCode.OK
            logger.info("%s %s (--burst: its partitions are drained)", child.name, status)
            return
        uptime = self.restarts.uptime(child.index)
        verdict = self.restarts.died(child.index)
        if verdict.give_up:
            self.gave_up = (
                f"Worker {child.index} failed at start {verdict.failed_starts} times in a row (last: it {status} "
                f"after {uptime:.1f}s, before it started consuming). Its own error is in the output above; "
                "fix it and start runkafkaworker again."
            )
            logger.critical("%s %s before it started consuming; giving up: stopping the others", child.name, status)
            self._begin_stop("a worker process keeps failing at start")
            return
        when = "before it started consuming" if verdict.failed_starts else f"after {uptime:.1f}s"
        logger.error("%s %s %s; starting it again in %.1fs", child.name, status, when, verdict.delay)
        self.restart_at[child.index] = self.clock() + verdict.delay

    def _start_due(self) -> None:
        now = self.clock()
        for index, when in list(self.restart_at.items()):
            if when <= now:
                del self.restart_at[index]
                self._start(index)

    # --- signals and stopping ---------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD:  # SIGCHLD only wakes the loop (through the wakeup fd)
            self._signals.append(signum)

    def _wait(self, wake_r: int) -> None:
        timeout = LOOP_TIMEOUT
        now = self.clock()
        for when in [*self.restart_at.values(), *([self.stop_deadline] if self.stop_deadline is not None else [])]:
            timeout = min(timeout, max(0.0, when - now))
        fds = [wake_r, *(c.ready_fd for c in self.children.values() if c.ready_fd is not None)]
        readable, _, _ = select.select(fds, [], [], timeout)
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)

    def _react_to_signals(self) -> None:
        while self._handled_signals < len(self._signals):
            name = signal.Signals(self._signals[self._handled_signals]).name
            self._handled_signals += 1
            if self.stop_deadline is None:
                self._begin_stop(f"received {name}")
            else:
                self._force(name)

    def _begin_stop(self, reason: str) -> None:
        if self.stop_deadline is not None:
            return
        self.stop_deadline = self.clock() + self.shutdown_timeout + STOP_GRACE
        self.restart_at.clear()
        logger.info(
            "Stopping %d worker process(es) (%s): forwarding SIGTERM, waiting up to %.0fs",
            len(self.children),
            reason,
            self.shutdown_timeout + STOP_GRACE,
        )
        for child in self.children.values():
            self._send(child, signal.SIGTERM)

    def _force(self, name: str) -> None:
        logger.error(
            "Second %s: killing %d worker process(es) at once; running jobs are not marked", name, len(self.children)
        )
        self._kill_children(ExitCode.FORCED)
        self.forced = True  # even if no child was left to kill

    def _enforce_stop_deadline(self) -> None:
        if self.stop_deadline is None or self.clock() < self.stop_deadline or not self.children:
            return
        for child in self.children.values():
            logger.error("%s did not stop within %.0fs: killing it", child.name, self.shutdown_timeout + STOP_GRACE)
        self._kill_children(ExitCode.SHUTDOWN_TIMEOUT)

    def _kill_children(self, status: ExitCode) -> None:
        """Kill every child now, wait for it, and record ``status`` as how it ended."""
        for child in self.children.values():
            self._send(child, signal.SIGKILL)
            child.process.wait()
            self._close_ready(child)
            self.final[child.index] = status
        self.children.clear()

    def _send(self, child: _Child, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # exited, not reaped yet
            child.process.send_signal(sig)

    def _kill_all(self) -> None:
        for child in self.children.values():
            self._send(child, signal.SIGKILL)
            with contextlib.suppress(Exception):
                child.process.wait(5)
            self._close_ready(child)
        self.children.clear()


def available_cpus() -> int:
    """Return how many CPUs this process may run on (``--processes auto``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
