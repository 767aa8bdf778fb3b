"""The supervising loop with scripted children: real processes and signals, no broker, no Django worker.

Each child is a few lines of Python that speak the supervisor's protocol (the ready pipe from the
environment) and then do what the test needs: die, ask the supervisor to stop (by signalling it, as an
operator would), ignore SIGTERM. The supervisor runs in the test process, on its main thread.
"""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import pytest

from kafka_jobs.supervisor import supervisor as supervisor_module
from kafka_jobs.supervisor.policy import RestartPolicy
from kafka_jobs.supervisor.supervisor import Supervisor, SupervisorGaveUp
from kafka_jobs.worker import ExitCode

FAST = RestartPolicy(initial_delay=0.01, max_delay=0.05, stable_after=60.0, max_failed_starts=3)

PRELUDE = """
import os, signal, sys, time
from pathlib import Path
log = Path(sys.argv[1])
index = os.environ["KAFKA_JOBS_WORKER_INDEX"]
supervisor = int(os.environ["KAFKA_JOBS_SUPERVISOR_PID"])
def note(event):
    with log.open("a") as fh:
        fh.write(f"{index} {os.getpid()} {event}\\n")
def ready():
    fd = int(os.environ["KAFKA_JOBS_READY_FD"])
    os.write(fd, b"R")
    os.close(fd)
def wait_for_sigterm(code=0):
    signal.signal(signal.SIGTERM, lambda *_: (note("sigterm"), os._exit(code)))
    while True:
        time.sleep(60)
note("start")
"""


def supervise(tmp_path: Path, body: str, processes: int = 1, **kwargs: object) -> tuple[ExitCode, list[str]]:
    """Run a supervisor over children running PRELUDE + body; return its status and the children's notes."""
    log = tmp_path / "children.log"
    script = PRELUDE + textwrap.dedent(body)
    command = [sys.executable, "-c", script, str(log)]
    supervisor = Supervisor(command, processes, policy=FAST, **kwargs)  # type: ignore[arg-type]
    code = supervisor.run()
    return code, log.read_text().splitlines()


def events(notes: list[str], index: str = "1") -> list[str]:
    return [line.split()[2] for line in notes if line.split()[0] == index]


def test_children_that_keep_failing_at_start_make_the_supervisor_give_up_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(SupervisorGaveUp, match=r"Worker \d failed at start 3 times in a row \(last: it exited with "):
        supervise(tmp_path, "sys.exit(1)", processes=2, shutdown_timeout=5.0)

    notes = (tmp_path / "children.log").read_text().splitlines()
    assert len([n for n in notes if n.endswith("start")]) <= 6  # no slot started a fourth time


def test_a_child_that_dies_after_it_was_ready_is_started_again(tmp_path: Path) -> None:
    body = """
    ready()
    if not (log.parent / "died-once").exists():
        (log.parent / "died-once").touch()
        os._exit(5)
    signal.signal(signal.SIGTERM, lambda *_: (note("sigterm"), os._exit(0)))
    os.kill(supervisor, signal.SIGTERM)
    while True:
        time.sleep(60)
    """
    code, notes = supervise(tmp_path, body, shutdown_timeout=5.0)

    assert code is ExitCode.OK
    assert events(notes) == ["start", "start", "sigterm"]


def test_the_first_signal_is_forwarded_as_sigterm_to_every_child_and_their_statuses_are_summarised(
    tmp_path: Path,
) -> None:
    # Each child arms its handler before it says so, and the stop comes only once all three have (under load,
    # a child that had only started could be stopped before its handler existed).
    body = """
    signal.signal(signal.SIGTERM, lambda *_: (note("sigterm"), os._exit(2 if index == "2" else 0)))
    note("armed")
    ready()
    if index == "1":
        while len([l for l in log.read_text().splitlines() if l.endswith("armed")]) < 3:
            time.sleep(0.01)
        os.kill(supervisor, signal.SIGINT)
    while True:
        time.sleep(60)
    """
    code, notes = supervise(tmp_path, body, processes=3, shutdown_timeout=5.0)

    assert code is ExitCode.SHUTDOWN_TIMEOUT  # the highest: child 2 said its jobs did not finish in time
    assert sorted(line.split()[0] for line in notes if line.endswith("sigterm")) == ["1", "2", "3"]


def test_a_second_signal_kills_the_children_at_once(tmp_path: Path) -> None:
    body = """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a graceful stop that would never end
    ready()
    os.kill(supervisor, signal.SIGTERM)
    os.kill(supervisor, signal.SIGINT)
    while True:
        time.sleep(60)
    """
    code, _notes = supervise(tmp_path, body, processes=2, shutdown_timeout=60.0)

    assert code is ExitCode.FORCED


def test_children_still_running_past_the_stop_deadline_are_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_module, "STOP_GRACE", 0.0)
    body = """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready()
    os.kill(supervisor, signal.SIGTERM)
    while True:
        time.sleep(60)
    """
    code, _notes = supervise(tmp_path, body, shutdown_timeout=0.2)

    assert code is ExitCode.SHUTDOWN_TIMEOUT


def test_with_burst_a_child_that_exits_0_is_done_and_one_that_fails_is_restarted(tmp_path: Path) -> None:
    body = """
    ready()
    if index == "2" and not (log.parent / "failed-once").exists():
        (log.parent / "failed-once").touch()
        sys.exit(3)
    sys.exit(0)
    """
    code, notes = supervise(tmp_path, body, processes=2, shutdown_timeout=5.0, burst=True)

    assert code is ExitCode.OK
    assert events(notes, "1") == ["start"]
    assert events(notes, "2") == ["start", "start"]


def test_signal_handlers_are_restored_afterwards(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGCHLD)

    supervise(tmp_path, "ready()\nsys.exit(0)", shutdown_timeout=5.0, burst=True)

    assert (
        signal.getsignal(signal.SIGTERM),
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGCHLD),
    ) == before


def test_a_command_that_cannot_be_run_is_a_clear_error(tmp_path: Path) -> None:
    supervisor = Supervisor([str(tmp_path / "missing-python")], 2, shutdown_timeout=1.0, policy=FAST)

    with pytest.raises(SupervisorGaveUp, match=r"Could not start worker 1 \(.*missing-python\): .*No such file"):
        supervisor.run()
