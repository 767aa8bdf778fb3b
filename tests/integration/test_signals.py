"""Signals delivered to a real worker process at the worst moment: inside ``Shutdown.request()``.

At ``--max-jobs`` or ``--burst`` the poll thread calls ``request()``, which takes a lock and logs. A signal
handler that did the same waited for that lock forever (issue 7, item 10), and later signals were ignored.
``slow_stop_worker`` holds ``request()`` open for a few seconds so the test can signal into it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kafka_jobs.devbroker import die_with_parent
from kafka_jobs.producer import get_producer
from kafka_jobs.worker import ExitCode
from tests.helpers import wait_for
from tests.integration.conftest import ROOT, KafkaEnv
from tests.jobs import RecordJob, read_records

pytestmark = pytest.mark.integration


def start_slow_stop_worker(env: KafkaEnv, marker: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.slow_stop_worker", "--queues", "single", "--max-jobs", "1"],
            cwd=ROOT,
            env=env.env(KAFKA_JOBS_TEST_IN_REQUEST=str(marker)),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - a dead test run leaves no worker
        )


# Two different signals: two of the same kind sent together may be delivered as one.
@pytest.mark.parametrize(
    "signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGTERM]], ids=["one-signal", "two-signals"]
)
def test_a_signal_inside_the_stop_request_neither_deadlocks_nor_is_ignored(
    kafka_env: KafkaEnv, tmp_path: Path, signals: list[int]
) -> None:
    jobs = kafka_env.log_file()
    RecordJob.set(queue="single").perform_later(jobs, "only")
    get_producer().flush(10)
    marker, output = tmp_path / "in-request", tmp_path / "worker.log"
    worker = start_slow_stop_worker(kafka_env, marker, output)
    try:
        wait_for(marker.exists, 60, message=lambda: output.read_text(errors="replace"))  # --max-jobs 1 reached

        for sig in signals:
            worker.send_signal(sig)
        code = worker.wait(30)  # a deadlocked worker never exits

        text = output.read_text(errors="replace")
        if len(signals) == 1:  # finishes the graceful stop it was in
            assert code == ExitCode.OK, text
            assert "Worker stopped (--max-jobs 1 reached)" in text
            assert kafka_env.committed("single") == 1
        else:  # the second signal exits at once
            assert code == ExitCode.FORCED, text
            # Either may count as second: the worker's threads take signals in any order on a busy machine.
            assert re.search(r"Second SIG(INT|TERM): exiting at once", text), text
        assert [r["args"] for r in read_records(jobs)] == [["only"]]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
