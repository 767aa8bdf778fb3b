"""The local stack behind ``make demo`` and ``make run``: broker, database, topics and child processes.

Every process started here is stopped by its PID, in reverse order of start (the worker before the
broker it commits to), also after Ctrl-C. Children run in their own session so that a Ctrl-C in the
terminal reaches only this process, which then stops them in that order.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

from kafka_jobs.devbroker import die_with_parent

if TYPE_CHECKING:
    from kafka_jobs.devbroker import DevBroker

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = BASE_DIR / "manage.py"
SETTINGS_MODULE = "testproject.settings"
# Longer than the worker's SHUTDOWN_TIMEOUT (10 s in settings), so a graceful stop is never cut short.
WORKER_STOP_TIMEOUT = 20.0
KILL_WAIT = 10.0
CONNECT_TIMEOUT = 5.0


class StackError(Exception):
    """The stack could not start or a part of it failed; the message says what to do."""


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Signal handler: let SIGTERM take the same clean-up path as Ctrl-C."""
    raise KeyboardInterrupt


def handle_stop_signals() -> None:
    """Turn SIGINT and SIGTERM into ``KeyboardInterrupt`` (call from the main thread).

    SIGINT is set explicitly because a shell starts background jobs with it ignored, and children
    inherit an ignored signal: the worker and runserver must be able to receive it.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)


def check_reachable(bootstrap_servers: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise ``StackError`` unless one of the ``host:port`` addresses accepts a TCP connection.

    A quick, clear failure instead of the Kafka clients' retry loop when the variable points nowhere.
    """
    errors = []
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            errors.append(f"{address.strip()!r} is not host:port")
            continue
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{address.strip()}: {exc.strerror or exc}")
    raise StackError(
        f"Cannot connect to KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers!r} ({'; '.join(errors)}). Start that "
        "broker, or unset KAFKA_BOOTSTRAP_SERVERS to use the embedded one."
    )


class Child:
    """A subprocess of the stack, stopped by its PID with ``stop_signal`` and a bounded wait."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str],
        log_path: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = WORKER_STOP_TIMEOUT,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self._log: IO[bytes] | None = log_path.open("ab") if log_path is not None else None
        self.proc = subprocess.Popen(
            list(args),
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log is not None else None,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - only a prctl call before exec
        )
        self.pid = self.proc.pid

    def poll(self) -> int | None:
        """Return the exit status if the process has exited, else ``None``."""
        return self.proc.poll()

    def stop(self) -> int:
        """Ask the process to stop, wait, SIGKILL it if it does not; return its exit status.

        Signals go to the child's process group (its own session, so the group id is its PID): that
        reaches the processes it started, such as runserver's autoreloaded server. A Ctrl-C during the
        wait kills at once (the user asked twice).
        """
        try:
            if self.proc.poll() is None:
                self._signal(self.stop_signal)
                try:
                    self.proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    print(f"{self.name} (pid {self.pid}) did not stop within {self.stop_timeout:g} s; killing it.")
                    self._kill()
                except KeyboardInterrupt:
                    self._kill()
            # The group may outlive its leader (a grandchild still exiting): make sure nothing is left.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            return self.proc.returncode
        finally:
            if self._log is not None:
                self._log.close()

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.proc.wait(KILL_WAIT)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the process's log file, if it has one."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text)


class Stack:
    """A Kafka broker (embedded Tansu, or the one in ``KAFKA_BOOTSTRAP_SERVERS``), Django, and children."""

    def __init__(self, *, database_url: str | None = None, broker_log: Path | None = None) -> None:
        self.database_url = database_url
        self.broker_log = broker_log
        self.broker: DevBroker | None = None  # set when this stack started the broker
        self.bootstrap_servers = ""
        self.children: list[Child] = []

    @property
    def running(self) -> bool:
        """True if this stack started a process that is not stopped yet."""
        return bool(self.children) or self.broker is not None

    def start(self) -> None:
        """Start or find the broker, configure and set up Django, migrate, and create the routed topics."""
        existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        if existing:
            check_reachable(existing)
            self.bootstrap_servers = existing
            print(f"Using the Kafka cluster at {existing} (KAFKA_BOOTSTRAP_SERVERS).")
        else:
            from kafka_jobs.devbroker import DevBroker

            self.broker = broker = DevBroker(log_path=self.broker_log)
            broker.start()
            self.bootstrap_servers = broker.bootstrap_servers
            print(f"Started the embedded Tansu broker at {self.bootstrap_servers} (pid {broker.pid}).")
        # This process and every child read the same settings from the environment.
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
        os.environ["JOB_BACKEND"] = "kafka"
        if self.database_url:
            os.environ["DATABASE_URL"] = self.database_url
        os.environ.setdefault("PYTHONUNBUFFERED", "1")

        import django
        from django.core.management import CommandError, call_command

        django.setup()
        from django.conf import settings

        call_command("migrate", verbosity=0, interactive=False)
        print(f"Migrated the database {settings.DATABASES['default']['NAME']}.")
        output = io.StringIO()
        try:
            call_command("kafkatopics", "create", stdout=output)
        except CommandError as exc:
            raise StackError(str(exc)) from exc
        summary = output.getvalue().strip().splitlines()
        print(f"Routed topics (kafkatopics create): {summary[-1] if summary else 'done'}")

    def spawn(
        self,
        name: str,
        *args: str,
        log_path: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = WORKER_STOP_TIMEOUT,
    ) -> Child:
        """Start ``manage.py *args`` as a child of this stack and return it."""
        child = Child(
            name,
            [sys.executable, str(MANAGE), *args],
            env=dict(os.environ),
            log_path=log_path,
            stop_signal=stop_signal,
            stop_timeout=stop_timeout,
        )
        self.children.append(child)
        return child

    def stop(self) -> dict[str, int]:
        """Stop the children (newest first), flush this process's producer, stop the broker.

        Returns each child's exit status by name. The broker is stopped even if a Ctrl-C interrupts the
        rest; while it stops (a bounded wait) Ctrl-C is ignored, so it is never left behind.
        """
        statuses: dict[str, int] = {}
        try:
            while self.children:
                child = self.children.pop()
                statuses[child.name] = child.stop()
            with contextlib.suppress(Exception):  # a failed flush is logged by kafka_jobs; keep stopping
                from kafka_jobs import backends

                backends.reset()
        finally:
            if self.broker is not None:
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    self.broker.stop()
                finally:
                    signal.signal(signal.SIGINT, previous)
                self.broker = None
        return statuses
