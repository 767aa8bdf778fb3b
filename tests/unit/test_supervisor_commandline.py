"""``runkafkaworker --processes``: its validation, and the command line each worker process gets."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
from django.core.management import CommandError, call_command

from kafka_jobs.management.commands.runkafkaworker import Command
from kafka_jobs.supervisor import available_cpus, option_arguments, program


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "must be"), ("-2", "must be"), ("abc", "'abc' is not a whole number"), ("1.5", "is not a whole number")],
)
def test_a_bad_process_count_is_a_command_error_that_says_what_is_allowed(value: str, message: str) -> None:
    with pytest.raises(CommandError, match=rf"--processes.*{message}.*or 'auto' for one per CPU"):
        call_command("runkafkaworker", "--processes", value)


def test_auto_is_the_number_of_cpus_this_process_may_use() -> None:
    options = Command().create_parser("manage.py", "runkafkaworker").parse_args(["--processes", "auto"])

    assert options.processes == available_cpus() >= 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-jobs", "5"], "--max-jobs cannot be combined with --processes"),
        (["--scheduling-only"], "--scheduling-only"),
    ],
)
def test_options_that_mean_nothing_for_several_processes_are_refused(extra: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("runkafkaworker", "--processes", "2", "--skip-checks", *extra)


def test_the_child_options_parse_back_to_the_supervisor_options_except_processes() -> None:
    parser = Command().create_parser("manage.py", "runkafkaworker")
    argv = [
        "--processes",
        "3",
        "--queues",
        "a",
        "b",
        "--concurrency",
        "4",
        "--burst",
        "--log-level",
        "DEBUG",
        "-v",
        "2",
    ]
    options = vars(parser.parse_args(argv))

    arguments = option_arguments(parser, options, drop={"processes"})

    assert "--processes" not in arguments
    assert vars(parser.parse_args(arguments)) == {**options, "processes": 1}


def test_a_command_run_from_manage_py_runs_its_children_through_manage_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # a script: no __spec__

    assert program("runkafkaworker", ["/srv/app/manage.py", "runkafkaworker", "--processes", "2"]) == [
        sys.executable,
        "/srv/app/manage.py",
    ]


def test_a_command_run_with_python_m_runs_its_children_with_the_same_module(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.util.find_spec("django.__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)

    assert program("runkafkaworker", ["/x/django/__main__.py", "runkafkaworker"]) == [sys.executable, "-m", "django"]


def test_a_command_run_by_call_command_runs_its_children_with_python_m_django() -> None:
    assert program("runkafkaworker", ["pytest", "-k", "x"]) == [sys.executable, "-m", "django"]
