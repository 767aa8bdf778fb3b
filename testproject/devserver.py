"""``python -m testproject.devserver`` (``make run``): broker, worker and ``runserver``; one Ctrl-C stops all.

Starts the embedded Tansu broker (or uses the cluster in ``KAFKA_BOOTSTRAP_SERVERS``), migrates the
database, creates the routed topics, then runs ``manage.py runkafkaworker`` and ``manage.py runserver``
with their output in this terminal. Ctrl-C (or SIGTERM) stops the server, then the worker (gracefully:
running jobs finish), then the broker. If the worker or the server exits on its own, everything stops.
The admin, with the kafka_jobs dashboard, is at /admin/ with the demo login admin/admin (``demo_login``).
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time

from kafka_jobs.exceptions import KafkaJobsError

from .demo_login import DEMO_PASSWORD, DEMO_USERNAME, ensure_demo_admin
from .stack import BASE_DIR, Stack, StackError, handle_stop_signals

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SERVER_STOP_TIMEOUT = 10.0


def port(value: str) -> int:
    """argparse type: a TCP port number."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {number}")
    return number


def check_port_free(number: int) -> None:
    """Raise ``StackError`` if ``HOST:number`` is taken, before anything is started."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, number))
        except OSError as exc:
            raise StackError(f"Port {number} on {HOST} is not available ({exc.strerror}); pass --port N.") from None


def main(argv: list[str] | None = None) -> int:
    """Run the development stack until Ctrl-C; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m testproject.devserver",
        description="Run a Kafka broker, a job worker and the testproject's runserver together; Ctrl-C stops all. "
        "Uses the cluster in KAFKA_BOOTSTRAP_SERVERS if set, else starts an embedded broker.",
    )
    parser.add_argument("--port", type=port, default=DEFAULT_PORT, help=f"runserver port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    handle_stop_signals()
    state_dir = BASE_DIR / ".kafka_jobs"
    state_dir.mkdir(exist_ok=True)
    stack = Stack(broker_log=state_dir / "devbroker.log")
    status = 0
    try:
        check_port_free(args.port)
        stack.start()
        created = ensure_demo_admin()
        worker = stack.spawn("worker", "runkafkaworker")
        server = stack.spawn(
            # SIGINT, not SIGTERM: runserver's autoreloader kills its child process only on SIGINT.
            "runserver",
            "runserver",
            f"{HOST}:{args.port}",
            stop_signal=signal.SIGINT,
            stop_timeout=SERVER_STOP_TIMEOUT,
        )
        url = f"http://{HOST}:{args.port}/jobs/"
        login = "created for this development server" if created else "the development server's demo login"
        print(
            f"\nWorker pid {worker.pid}, runserver pid {server.pid}. Try:\n"
            f"    curl -X POST '{url}?count=10'\n"
            f"    curl -X POST '{url}?count=3&fail=1'   (fail twice more, then dead-lettered)\n"
            f"    curl '{url}'\n"
            f"Dashboard: http://{HOST}:{args.port}/admin/kafka_jobs/dashboard/ "
            f"(user {DEMO_USERNAME}, password {DEMO_PASSWORD}: {login}).\n"
            "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while True:
            for child in (worker, server):
                code = child.poll()
                if code is not None:
                    raise StackError(f"{child.name} (pid {child.pid}) exited with status {code}; stopping the rest.")
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping the server, the worker (running jobs finish) and the broker ...", flush=True)
    except (StackError, KafkaJobsError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        stack.stop()
        print("Everything stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())
