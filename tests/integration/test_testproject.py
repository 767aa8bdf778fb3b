"""The testproject end to end: ``python -m testproject.demo`` against the session broker.

The demo is what ``make demo`` runs: it enqueues jobs through the testproject's real HTTP view (with
JOB_BACKEND "kafka"), a ``runkafkaworker`` subprocess runs them, and everything it started must be gone
when it exits, also after Ctrl-C. It runs as a subprocess because it needs ``testproject.settings``
while these tests run with ``tests.settings``.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARKER = "KAFKA_JOBS_TEST_DEMO_MARKER"


def demo_env(bootstrap: str, tmp_path: Path, marker: str) -> dict[str, str]:
    """Environment for one demo run: its own topics, group and database; a marker every child inherits."""
    token = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_JOBS_QUEUE_PREFIX": f"t-demo-{token}-",
        "KAFKA_JOBS_GROUP_ID": f"g-demo-{token}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
        MARKER: marker,
    }


def processes_with_marker(marker: str) -> list[str]:
    """Return ``pid cmdline`` of live processes whose environment carries ``marker`` (the demo's children)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name} {cmdline}")
        except OSError:  # exited meanwhile, or not ours
            continue
    return found


def assert_nothing_left(output: str, marker: str) -> None:
    """Every PID the demo reported has exited, and no process with its marker remains."""
    pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", output)]
    assert pids, f"the demo reported no child PIDs:\n{output}"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert processes_with_marker(marker) == []


def count_rows(database: Path) -> tuple[int, int]:
    """Return (rows, distinct job ids) written by ExampleJob, read straight from the database file."""
    with sqlite3.connect(database) as db:
        rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM example_jobrun").fetchone()
    return int(rows), int(distinct)


def run_demo(bootstrap: str, tmp_path: Path, marker: str, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``python -m testproject.demo *args`` to the end; return it and its stdout + stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "testproject.demo", *args],
        cwd=ROOT,
        env=demo_env(bootstrap, tmp_path, marker),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return result, result.stdout + result.stderr


def test_demo_runs_every_job_enqueued_through_the_view_and_leaves_no_process(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    result, output = run_demo(kafka_bootstrap, tmp_path, marker, "--jobs", "60", "--timeout", "60")

    assert result.returncode == 0, output
    assert f"Using the Kafka cluster at {kafka_bootstrap}" in output
    assert "60/60 jobs done" in output
    assert re.search(r"Ran 60 jobs in [\d.]+ s: \d+ jobs/s", output), output
    assert "Everything stopped." in output
    # 60 jobs plus the warm-up job, each written once by the worker.
    assert count_rows(tmp_path / "demo.sqlite3") == (61, 61)
    assert_nothing_left(output, marker)


def test_demo_kind_task_runs_the_django_task_enqueued_through_the_view_and_reads_its_result(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    result, output = run_demo(kafka_bootstrap, tmp_path, marker, "--kind", "task", "--jobs", "30", "--timeout", "60")

    assert result.returncode == 0, output
    assert "30/30 tasks done" in output
    assert re.search(r"Stored result of the last task: GET /results/[0-9a-f-]+/ -> SUCCESSFUL, 1 attempt", output)
    # 30 tasks plus the warm-up task, each written once by the worker, keyed by its result id.
    assert count_rows(tmp_path / "demo.sqlite3") == (31, 31)
    with sqlite3.connect(tmp_path / "demo.sqlite3") as db:
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM kafka_jobs_taskresult GROUP BY status").fetchall())
    assert statuses == {"SUCCESSFUL": 31}
    assert_nothing_left(output, marker)


def test_demo_interrupted_while_jobs_run_stops_everything(kafka_bootstrap: str, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    demo = subprocess.Popen(
        [sys.executable, "-m", "testproject.demo", "--jobs", "5000", "--timeout", "120"],
        cwd=ROOT,
        env=demo_env(kafka_bootstrap, tmp_path, marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: any("Enqueuing 5000" in line for line in lines),
            timeout=90,
            message=lambda: "the demo never started enqueuing:\n" + "".join(lines),
        )
        demo.send_signal(signal.SIGINT)
        status = demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    reader.join(10)
    output = "".join(lines)

    assert status == 130, output
    assert "Interrupted." in output
    assert "Everything stopped." in output
    assert_nothing_left(output, marker)
