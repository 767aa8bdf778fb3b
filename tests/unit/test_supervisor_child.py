"""The worker-process side of ``--processes``: the supervisor's variables, log names, the lifeline."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from kafka_jobs.exceptions import ConfigurationError
from kafka_jobs.supervisor import child as child_module
from kafka_jobs.supervisor.child import SupervisedChild, name_in_logs
from kafka_jobs.worker import ExitCode

VARIABLES = {
    "KAFKA_JOBS_WORKER_INDEX": "2",
    "KAFKA_JOBS_SUPERVISOR_PID": "10",
    "KAFKA_JOBS_LIFELINE_FD": "7",
    "KAFKA_JOBS_READY_FD": "8",
}


def test_a_process_no_supervisor_started_is_not_supervised() -> None:
    assert SupervisedChild.from_environ({"PATH": "/bin"}) is None


def test_the_supervisor_variables_are_read_once_and_removed_so_grandchildren_are_not_supervised() -> None:
    environ = {**VARIABLES, "PATH": "/bin"}

    child = SupervisedChild.from_environ(environ)

    assert child == SupervisedChild(index=2, supervisor_pid=10, lifeline_fd=7, ready_fd=8)
    assert environ == {"PATH": "/bin"}


def test_a_worker_index_without_the_other_variables_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Do not set KAFKA_JOBS_WORKER_INDEX yourself"):
        SupervisedChild.from_environ({"KAFKA_JOBS_WORKER_INDEX": "1"})


def test_kafka_jobs_log_lines_name_the_worker_process_and_other_loggers_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())  # restored afterwards
    name_in_logs("worker 3 pid 99")

    ours = logging.getLogger("kafka_jobs.worker").makeRecord(
        "kafka_jobs.worker", logging.INFO, "f", 1, "hi %s", ("x",), None
    )
    theirs = logging.getLogger("myapp").makeRecord("myapp", logging.INFO, "f", 1, "hi %s", ("x",), None)
    similar = logging.getLogger("kafka_jobsx").makeRecord("kafka_jobsx", logging.INFO, "f", 1, "hi", (), None)

    assert ours.getMessage() == "[worker 3 pid 99] hi x"
    assert theirs.getMessage() == "hi x"
    assert similar.getMessage() == "hi"


def test_a_ready_report_writes_one_byte_and_closes_the_pipe() -> None:
    read_end, write_end = os.pipe()
    child = SupervisedChild(index=1, supervisor_pid=os.getpid(), lifeline_fd=-1, ready_fd=write_end)

    child.report_ready()
    child.report_ready()  # once only

    assert os.read(read_end, 10) == child_module.READY
    assert os.read(read_end, 10) == b""  # closed
    os.close(read_end)


CHILD = """
import time
from kafka_jobs.supervisor.child import SupervisedChild
SupervisedChild.from_environ().start()
print("watching", flush=True)
time.sleep(60)
"""


def test_a_worker_process_exits_at_once_when_its_lifeline_to_the_supervisor_breaks() -> None:
    lifeline_r, lifeline_w = os.pipe()
    env = {
        **os.environ,
        "KAFKA_JOBS_WORKER_INDEX": "1",
        "KAFKA_JOBS_SUPERVISOR_PID": str(os.getpid()),
        "KAFKA_JOBS_LIFELINE_FD": str(lifeline_r),
        "KAFKA_JOBS_READY_FD": "-1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD], env=env, pass_fds=(lifeline_r,), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    os.close(lifeline_r)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"watching\n"

        os.close(lifeline_w)  # what the kernel does when the supervisor dies, however it dies

        assert process.wait(10) == ExitCode.FORCED
        assert b"its supervisor (pid" in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
