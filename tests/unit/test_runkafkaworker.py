"""runkafkaworker's logging set-up (it leaves handlers to the project's LOGGING and only fills a gap) and its
refusal of a health file it could not write."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from kafka_jobs.management.commands import runkafkaworker
from kafka_jobs.management.commands.runkafkaworker import check_health_file_directory, configure_logging


@contextlib.contextmanager
def isolated() -> Iterator[tuple[logging.Logger, logging.Logger]]:
    """The kafka_jobs and root loggers, emptied (pytest's capture handlers too) and restored after."""
    ours, root = logging.getLogger("kafka_jobs"), logging.getLogger()
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in (ours, root)]
    for lg in (ours, root):
        lg.handlers.clear()
        lg.setLevel(logging.NOTSET)
        lg.propagate = True
    try:
        yield ours, root
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def test_with_logging_configured_only_on_root_no_handler_is_added_and_records_propagate() -> None:
    with isolated() as (ours, root):
        root.addHandler(logging.NullHandler())
        root.setLevel(logging.WARNING)

        configure_logging(None)

        assert ours.handlers == [] and ours.propagate
        assert ours.level == logging.INFO  # the worker's own lines still show through the root handler


def test_without_any_logging_configured_a_stderr_handler_is_added() -> None:
    with isolated() as (ours, _root):
        configure_logging(None)

        assert [type(h) for h in ours.handlers] == [logging.StreamHandler]
        assert ours.propagate and ours.level == logging.INFO


def test_the_level_logging_gives_kafka_jobs_is_kept_unless_log_level_is_given() -> None:
    with isolated() as (ours, _root):
        ours.addHandler(logging.NullHandler())
        ours.setLevel(logging.ERROR)

        configure_logging(None)
        assert ours.level == logging.ERROR

        configure_logging("DEBUG")
        assert ours.level == logging.DEBUG
        assert len(ours.handlers) == 1


def test_a_health_file_in_a_missing_directory_is_refused_before_the_worker_starts(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "health"

    with pytest.raises(CommandError, match=r"--health-file .*: the directory .*missing does not exist"):
        call_command("runkafkaworker", health_file=str(path), burst=True, skip_checks=True, stdout=StringIO())


def test_a_health_file_setting_in_a_missing_directory_is_refused_naming_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "health"

    with (
        override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "HEALTH_FILE": str(path)}),
        pytest.raises(CommandError, match=r"KAFKA_JOBS\['HEALTH_FILE'\] .*does not exist"),
    ):
        call_command("runkafkaworker", burst=True, skip_checks=True, stdout=StringIO())


def test_a_health_file_in_a_directory_this_process_cannot_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access is faked: as root, a read-only directory would still be writable.
    monkeypatch.setattr(runkafkaworker.os, "access", lambda path, mode: False)

    with pytest.raises(CommandError, match=r"--health-file .*: this process cannot write to .*Choose another path"):
        check_health_file_directory(str(tmp_path / "health"), None)
