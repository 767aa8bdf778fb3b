"""``python -m testproject.demo`` (``make demo``): jobs from a real HTTP view, run by a real worker over Kafka.

Starts the embedded Tansu broker (or uses the cluster in ``KAFKA_BOOTSTRAP_SERVERS``), migrates a fresh
SQLite database, creates the routed topics, starts ``manage.py runkafkaworker``, serves the testproject on
a free loopback port, enqueues a batch of ``ExampleJob`` with ``POST /jobs/`` (``--kind task``: the
django.tasks ``example_task`` instead, then reads one stored result), and watches ``GET /jobs/`` until
every one ran. Then it stops everything it started, by PID, also on Ctrl-C or SIGTERM.

Exit status: 0 when every job ran within ``--timeout``; 1 otherwise; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from kafka_jobs.exceptions import KafkaJobsError
from kafka_jobs.management.argtypes import positive_int

from .stack import Child, Stack, StackError, handle_stop_signals

HOST = "127.0.0.1"
DEFAULT_JOBS = 2000
DEFAULT_TIMEOUT = 120.0
# How long the worker may take to join the consumer group and run a first job.
READY_TIMEOUT = 60.0
REQUEST_BATCH = 500  # jobs per POST request
HTTP_TIMEOUT = 30.0
POLL_INTERVAL = 0.2


class DemoError(Exception):
    """The demo could not complete; the message says what went wrong and where the logs are."""


class _QuietHandler(WSGIRequestHandler):
    """Do not log every request: the progress line is the demo's output."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve() -> Iterator[str]:
    """Serve the testproject's WSGI application on a free loopback port in a thread; yield its base URL."""
    from testproject.wsgi import application

    server: WSGIServer = make_server(HOST, 0, application, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="demo-http")
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _request(method: str, url: str) -> dict[str, Any]:
    """Send a request to the testproject and return its JSON body; raise ``DemoError`` on an HTTP error."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("error", detail)
        raise DemoError(f"{method} {url} answered {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise DemoError(f"{method} {url} failed: {exc.reason}") from None


class Progress:
    """One line of progress: rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, total: int, noun: str = "jobs") -> None:
        self.total = total
        self.noun = noun
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0

    def show(self, done: int, elapsed: float, *, final: bool = False) -> None:
        """Show ``done`` of ``total`` after ``elapsed`` seconds."""
        rate = done / elapsed if elapsed > 0 else 0.0
        line = f"{done}/{self.total} {self.noun} done ({elapsed:.1f} s, {rate:.0f} {self.noun}/s)"
        if self.tty:
            sys.stdout.write(f"\r{line}\033[K" + ("\n" if final else ""))
            sys.stdout.flush()
        elif final or time.monotonic() - self.last_print >= 2.0:
            print(line, flush=True)
            self.last_print = time.monotonic()


class Demo:
    """Enqueue jobs (or tasks, ``kind="task"``) through the view and wait for the worker to run them."""

    def __init__(self, base_url: str, worker: Child, kind: str = "job") -> None:
        self.base_url = base_url
        self.url = f"{base_url}/jobs/"
        self.worker = worker
        self.kind = kind
        self.noun = "tasks" if kind == "task" else "jobs"
        self.token = uuid.uuid4().hex[:12]
        self.last_result_id: str | None = None  # of the last task enqueued

    def done(self, batch: str) -> int:
        """Return how many jobs of ``batch`` have run (rows they wrote, counted by the view)."""
        return int(_request("GET", f"{self.url}?batch={batch}")["done"])

    def enqueue(self, batch: str, count: int) -> int:
        """Enqueue ``count`` jobs of ``batch`` with as few POST requests as possible; return how many."""
        enqueued = 0
        while enqueued < count:
            size = min(REQUEST_BATCH, count - enqueued)
            answer = _request("POST", f"{self.url}?count={size}&batch={batch}&kind={self.kind}")
            enqueued += int(answer["enqueued"])
            if answer.get("result_ids"):
                self.last_result_id = answer["result_ids"][-1]
        return enqueued

    def result(self, result_id: str) -> dict[str, Any]:
        """Return a task's stored result, as ``GET /results/<id>/`` shows it."""
        return _request("GET", f"{self.base_url}/results/{result_id}/")

    def check_worker(self) -> None:
        """Raise ``DemoError`` if the worker has exited."""
        status = self.worker.poll()
        if status is not None:
            raise DemoError(
                f"The worker (pid {self.worker.pid}) exited with status {status}. End of its log:\n"
                f"{self.worker.log_tail()}"
            )

    def wait_ready(self) -> float:
        """Run one warm-up job, so the timing below measures jobs and not the consumer group join."""
        started = time.monotonic()
        batch = f"{self.token}-warmup"
        self.enqueue(batch, 1)
        while self.done(batch) < 1:
            self.check_worker()
            if time.monotonic() - started > READY_TIMEOUT:
                raise DemoError(
                    f"The worker did not run a first job within {READY_TIMEOUT:g} s. End of its log:\n"
                    f"{self.worker.log_tail()}"
                )
            time.sleep(POLL_INTERVAL)
        return time.monotonic() - started

    def run(self, jobs: int, timeout: float) -> tuple[int, float, float]:
        """Enqueue ``jobs`` jobs and wait until they ran; return (done, enqueue seconds, total seconds)."""
        started = time.monotonic()
        self.enqueue(self.token, jobs)
        enqueue_time = time.monotonic() - started
        progress = Progress(jobs, self.noun)
        done = 0
        while True:
            done = self.done(self.token)
            elapsed = time.monotonic() - started
            if done >= jobs or elapsed > timeout:
                progress.show(done, elapsed, final=True)
                return done, enqueue_time, elapsed
            progress.show(done, elapsed)
            self.check_worker()
            time.sleep(POLL_INTERVAL)


def positive_float(value: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return number


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m testproject.demo",
        description="Enqueue example jobs through the testproject's HTTP view and run them with a Kafka worker. "
        "Uses the cluster in KAFKA_BOOTSTRAP_SERVERS if set, else starts an embedded broker.",
    )
    parser.add_argument(
        "--jobs", type=positive_int, default=DEFAULT_JOBS, help=f"jobs (or tasks) to run (default {DEFAULT_JOBS})"
    )
    parser.add_argument(
        "--kind",
        choices=["job", "task"],
        default="job",
        help="enqueue ExampleJob (job, the default) or the django.tasks example_task (task)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds the jobs may take before the demo fails (default {DEFAULT_TIMEOUT:g})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and return the exit status."""
    args = parse_args(argv)
    handle_stop_signals()
    workdir = Path(tempfile.mkdtemp(prefix="kafka-jobs-demo-"))
    stack = Stack(
        database_url=os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'demo.sqlite3'}",
        broker_log=workdir / "broker.log",
    )
    status = 1
    try:
        stack.start()
        worker = stack.spawn("worker", "runkafkaworker", log_path=workdir / "worker.log")
        print(f"Started the worker: manage.py runkafkaworker (pid {worker.pid}).")
        with serve() as base_url:
            print(f"Serving the testproject at {base_url}/jobs/ (in this process).")
            demo = Demo(base_url, worker, args.kind)
            ready = demo.wait_ready()
            print(f"The worker joined its consumer group and ran a warm-up {args.kind} in {ready:.1f} s.")
            what = "example_task(s) (django.tasks)" if args.kind == "task" else "ExampleJob(s)"
            query = "count=N&kind=task" if args.kind == "task" else "count=N"
            print(f"Enqueuing {args.jobs} {what} with POST {demo.url}?{query} ...")
            done, enqueue_time, elapsed = demo.run(args.jobs, args.timeout)
            if done < args.jobs:
                raise DemoError(
                    f"Only {done} of {args.jobs} {demo.noun} ran within {args.timeout:g} s. End of the worker's "
                    f"log:\n{worker.log_tail()}"
                )
            print(
                f"Ran {done} {demo.noun} in {elapsed:.2f} s: {done / elapsed:.0f} {demo.noun}/s "
                f"(enqueued through the view in {enqueue_time:.2f} s)."
            )
            if demo.last_result_id is not None:
                shown = demo.result(demo.last_result_id)
                print(
                    f"Stored result of the last task: GET /results/{shown['id']}/ -> {shown['status']}, "
                    f"{shown['attempts']} attempt(s), return value {shown['return_value']!r}."
                )
        status = 0
    except KeyboardInterrupt:
        print("\nInterrupted.")
        status = 130
    except (DemoError, StackError, KafkaJobsError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
    finally:
        if stack.running:
            print("Stopping the worker and the broker ...", flush=True)
        statuses = stack.stop()
        worker_status = statuses.get("worker")
        if worker_status not in (None, 0) and status == 0:
            print(f"error: the worker exited with status {worker_status}.", file=sys.stderr)
            status = 1
        if status == 1 and (workdir / "worker.log").exists():
            print(f"Logs and the database are kept in {workdir}.", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        print("Everything stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())
