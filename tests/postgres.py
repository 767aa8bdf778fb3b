"""A throwaway PostgreSQL server for the outbox tests and the benchmark: Debian's binaries, a loopback port.

Why not a fixture inside conftest: the benchmark starts one too. The server runs as the ``postgres`` user when
the tests run as root (PostgreSQL refuses to run as root), from ``/usr/lib/postgresql/<version>/bin`` (the
newest installed), with its data directory in a temporary directory that user owns. It is stopped by its PID.
A missing installation is an error naming the fix, never a skip (``make test`` installs it through
``scripts/system-packages``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from kafka_jobs.devbroker import die_with_parent

HOST = "127.0.0.1"
INSTALL_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
START_ATTEMPTS = 3  # the port we picked may be taken before the server binds it
DATABASE = "kafka_jobs_test"
_LOG_TAIL_CHARS = 3000


class PostgresUnavailable(RuntimeError):
    """The server cannot be started here; the message says why and what to install or fix."""


def find_bin_dir() -> Path:
    """Return the ``bin`` directory of the newest PostgreSQL under /usr/lib/postgresql."""
    versions = sorted(
        (p for p in INSTALL_ROOT.glob("*/bin") if (p / "postgres").exists() and (p / "initdb").exists()),
        key=lambda p: float(p.parent.name) if p.parent.name.replace(".", "").isdigit() else 0.0,
    )
    if not versions:
        raise PostgresUnavailable(
            f"No PostgreSQL server under {INSTALL_ROOT}/<version>/bin. The outbox tests need one: run "
            "'bash scripts/system-packages' as root (make test does), or 'sudo apt-get install -y postgresql'."
        )
    return versions[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One ``postgres`` process with its own data directory; a context manager."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.bin_dir = find_bin_dir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self._user = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise PostgresUnavailable(
                    f"Running as root, the server must run as the {SERVER_USER!r} user, which does not exist "
                    "(the Debian postgresql package creates it)."
                ) from exc
        self.base = Path(tempfile.mkdtemp(prefix="kafka-jobs-pg-"))
        self.data_dir = self.base / "data"
        self.log_path = log_path or self.base / "postgres.log"
        self.port = 0
        self.user = SERVER_USER if self.as_root else pwd.getpwuid(os.getuid()).pw_name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self.proc.pid if self.proc is not None else None

    def _run_kwargs(self) -> dict[str, object]:
        if not self.as_root:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if self.as_root:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Create the cluster, start the server on a free loopback port and wait until it accepts connections."""
        self._chown(self.base)
        initdb = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            timeout=120,
            check=False,
            **self._run_kwargs(),  # type: ignore[arg-type]
        )
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({initdb.returncode}): {initdb.stderr.decode(errors='replace')}")
        for attempt in range(START_ATTEMPTS):
            self.port = _free_port()
            if self._start_once(timeout):
                return
            if attempt == START_ATTEMPTS - 1:
                raise PostgresUnavailable(f"PostgreSQL did not start; its log ends with:\n{self.log_tail()}")

    def _start_once(self, timeout: float) -> bool:
        log = self.log_path.open("ab")
        self._chown(self.log_path)
        # Durability settings off: a test server's data is thrown away; the outbox's correctness does not
        # depend on fsync, and the machine is shared.
        self.proc = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-k",
                str(self.base),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=60",
                "-c",
                "shared_buffers=32MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - a killed test run leaves no server
            **self._run_kwargs(),  # type: ignore[arg-type]
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if self._accepts():
                return True
            time.sleep(0.05)
        self.stop()
        raise PostgresUnavailable(
            f"PostgreSQL did not accept connections on {HOST}:{self.port} within {timeout:g}s; its log ends with:\n"
            f"{self.log_tail()}"
        )

    def _accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(host=HOST, port=self.port, user=self.user, dbname="postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str = DATABASE) -> str:
        """Create database ``name`` and return it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=HOST, port=self.port, user=self.user, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_tail(self) -> str:
        """Return the end of the server log."""
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server by its PID (fast shutdown, then SIGKILL) and remove its files."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # "fast" shutdown: disconnect clients, stop
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
