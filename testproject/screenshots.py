"""``python -m testproject.screenshots``: the dashboard's screenshots for the docs (docs/images/*.png).

Starts the testproject's stack (embedded broker, a fresh SQLite database, a worker, runserver on a free port),
makes some history (jobs that succeed, jobs that end in the dead letter queue, a paused queue), then visits
each dashboard page in headless Chromium (Debian's ``chromium``, driven by Playwright) and saves it. Every
process it started is stopped by its PID at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .demo_login import DEMO_PASSWORD, DEMO_USERNAME, ensure_demo_admin
from .stack import BASE_DIR, Stack, StackError, handle_stop_signals

HOST = "127.0.0.1"
DEFAULT_OUT = BASE_DIR / "docs" / "images"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1100, "height": 660}
WAIT = 90.0
OK_JOBS, FAILING_JOBS = 300, 3
DLQ = "default.dead"


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Return ``check()`` once truthy; raise ``StackError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"Gave up waiting for {what} after {timeout:g} s.")
        time.sleep(0.25)


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def responds(url: str) -> bool:
    """True once ``url`` answers with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def make_history() -> None:
    """Run jobs that succeed and jobs that are dead-lettered, and wait until the worker reported them."""
    from kafka_jobs import perform_all_later
    from kafka_jobs.deadletter import read_dead_letters
    from kafka_jobs.ops import read_reports
    from testproject.example.jobs.example_job import ExampleJob
    from testproject.example.models import JobRun

    perform_all_later([ExampleJob("screenshots", n) for n in range(OK_JOBS)])
    perform_all_later([ExampleJob("screenshots", n, fail=True) for n in range(FAILING_JOBS)])
    for minutes in (2, 10, 45):  # waiting in the delay tiers, for the scheduled page
        ExampleJob.set(wait=dt.timedelta(minutes=minutes)).perform_later("screenshots-later", minutes)
    wait_until(lambda: JobRun.objects.count() >= OK_JOBS, "the example jobs to run")
    wait_until(lambda: len(read_dead_letters(DLQ)) >= FAILING_JOBS, "the failing jobs to be dead-lettered")
    wait_until(
        lambda: any(r.counters.dead_lettered >= FAILING_JOBS for r in read_reports()),
        "a worker report with the dead letters",
    )


def shoot(base_url: str, out: Path, chromium: str) -> list[Path]:
    """Log in and save a screenshot of each dashboard page; return the files written."""
    from playwright.sync_api import expect, sync_playwright

    from kafka_jobs.ops import pause_queue, read_reports, resume_queue

    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
        context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        page = context.new_page()
        page.set_default_timeout(WAIT * 1000)

        def save(name: str) -> None:
            path = out / f"dashboard-{name}.png"
            page.screenshot(path=str(path))
            written.append(path)

        page.goto("/admin/")
        page.fill("#id_username", DEMO_USERNAME)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#user-tools")).to_be_visible()

        page.goto("/admin/kafka_jobs/dashboard/")
        save("overview")
        page.goto("/admin/kafka_jobs/dashboard/workers/")
        save("workers")

        command = pause_queue("default", by=DEMO_USERNAME)
        wait_until(lambda: any(r.commands.get("default") == command.id for r in read_reports()), "the pause")
        page.goto("/admin/kafka_jobs/dashboard/queues/")
        save("queues")
        resume_queue("default", by=DEMO_USERNAME)

        page.goto("/admin/kafka_jobs/dashboard/deadletters/")
        save("deadletters")
        page.goto(f"/admin/kafka_jobs/dashboard/deadletters/{DLQ}/")
        save("deadletters-topic")
        page.locator("tr.kj-letter th a").first.click()
        expect(page.locator("pre.kj-traceback")).to_be_visible()
        save("deadletters-message")
        page.goto("/admin/kafka_jobs/dashboard/scheduled/")
        save("scheduled")
        page.goto("/admin/kafka_jobs/dashboard/recurring/")
        save("recurring")
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m testproject.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for the PNGs (default {DEFAULT_OUT})")
    parser.add_argument("--chromium", default=DEFAULT_CHROMIUM, help=f"the browser (default {DEFAULT_CHROMIUM})")
    args = parser.parse_args(argv)
    handle_stop_signals()
    state = Path(tempfile.mkdtemp(prefix="kafka-jobs-screenshots-"))
    stack = Stack(database_url=f"sqlite:///{state / 'db.sqlite3'}", broker_log=state / "broker.log")
    status = 0
    try:
        stack.start()
        ensure_demo_admin()
        stack.spawn("worker", "runkafkaworker", log_path=state / "worker.log")
        port = free_port()
        stack.spawn(
            "runserver",
            "runserver",
            f"{HOST}:{port}",
            "--noreload",
            log_path=state / "runserver.log",
            stop_signal=signal.SIGINT,
        )
        base_url = f"http://{HOST}:{port}"
        wait_until(lambda: responds(f"{base_url}/admin/login/"), "runserver")
        make_history()
        for path in shoot(base_url, args.out, args.chromium):
            print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    except KeyboardInterrupt:
        status = 130
    except StackError as exc:
        print(f"error: {exc} (logs in {state})", file=sys.stderr)
        status = 1
    finally:
        stack.stop()
    return status


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares the ORM's thread
    sys.exit(main())
