"""Running one job: context applied around it and reset afterwards, whatever the job does."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone, translation

from kafka_jobs import Job, activelocale, signals
from kafka_jobs.execution import dedicate_thread, forget_thread_state, job_context, run_job, worker_thread_context

seen: list[tuple[str, str]] = []


class ContextProbeJob(Job):
    def perform(self, fail: bool = False, leak: bool = False) -> None:
        seen.append((translation.get_language(), timezone.get_current_timezone_name()))
        if leak:  # a job that changes the thread's state and does not restore it
            translation.activate("de")
            timezone.activate("Asia/Tokyo")
        if fail:
            raise RuntimeError("boom")


def probe(locale: str | None, tz: str | None, **kwargs: Any) -> ContextProbeJob:
    job = ContextProbeJob(**kwargs)
    job.locale, job.timezone = locale, tz
    return job


@pytest.mark.parametrize("context", [job_context, worker_thread_context])
@pytest.mark.parametrize("fail", [False, True])
def test_job_runs_in_its_enqueue_locale_and_timezone_and_the_thread_is_reset_after(context: Any, fail: bool) -> None:
    seen.clear()
    job = probe("fr", "Europe/Paris", fail=fail, leak=True)
    if fail:
        with pytest.raises(RuntimeError):
            run_job(job, context=context)
    else:
        run_job(job, context=context)
    assert seen == [("fr", "Europe/Paris")]
    assert translation.get_language() == settings.LANGUAGE_CODE
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE


def test_worker_thread_context_uses_the_defaults_for_a_job_without_context() -> None:
    seen.clear()
    translation.activate("de")  # left over from elsewhere on this thread
    try:
        run_job(probe(None, None), context=worker_thread_context)
    finally:
        translation.deactivate()
    assert seen == [(settings.LANGUAGE_CODE, settings.TIME_ZONE)]


def test_unknown_timezone_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    seen.clear()
    run_job(probe("fr", "Mars/Olympus_Mons"), context=worker_thread_context)
    assert seen == [("fr", settings.TIME_ZONE)]
    assert "unknown timezone 'Mars/Olympus_Mons' ignored" in caplog.text


@pytest.mark.parametrize("context", [job_context, worker_thread_context])
@pytest.mark.parametrize(
    ("locale", "tz"),
    [(123, "UTC"), (["fr"], None), ("fr", 5), ("x" * 100_000, "y" * 100_000), ("fr\x00", "Europe/\x00Paris")],
    ids=["locale-int", "locale-list", "tz-int", "huge-strings", "nul-bytes"],
)
def test_a_locale_or_timezone_that_cannot_be_applied_never_fails_the_job(
    context: Any, locale: Any, tz: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen.clear()

    run_job(probe(locale, tz), context=context)

    assert len(seen) == 1  # the job ran
    assert translation.get_language() == settings.LANGUAGE_CODE
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE
    assert "ignored" in caplog.text


def on_job_thread(body: Any) -> None:
    """Run ``body`` on a fresh thread dedicated to jobs (as the worker's job threads are)."""
    errors: list[BaseException] = []

    def target() -> None:
        dedicate_thread()
        try:
            body()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    if errors:
        raise errors[0]


def test_a_dedicated_job_thread_does_not_read_the_defaults_again_between_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen.clear()
    reads: list[str] = []
    real = translation.get_language

    def counted() -> str | None:
        reads.append("language")
        return real()

    def body() -> None:
        run_job(probe(settings.LANGUAGE_CODE, settings.TIME_ZONE), context=worker_thread_context)
        monkeypatch.setattr(translation, "get_language", counted)
        run_job(probe("fr", "Europe/Paris", leak=True), context=worker_thread_context)
        run_job(probe(None, None), context=worker_thread_context)
        run_job(probe("fr", None), context=worker_thread_context)

    on_job_thread(body)

    default = (settings.LANGUAGE_CODE, settings.TIME_ZONE)
    assert seen == [default, ("fr", "Europe/Paris"), default, ("fr", settings.TIME_ZONE)]
    # The probe's own read per job, and the check after each job that activated "fr"; none before a job (that
    # would make 8) nor after the job that ran with the defaults and changed nothing (that would make 6).
    assert len(reads) == 5


MEDDLERS = {
    "activate": lambda: (translation.activate("de"), timezone.activate("Asia/Tokyo")),
    "deactivate_all": translation.deactivate_all,
    "timezone_activate": lambda: timezone.activate("Asia/Tokyo"),
    "override_left_open": lambda: translation.override("de").__enter__(),
}


@pytest.mark.parametrize("meddle", sorted(MEDDLERS))
def test_a_job_with_the_defaults_that_changes_the_thread_state_does_not_leak_into_the_next_job(meddle: str) -> None:
    seen.clear()
    state: list[tuple[str | None, str]] = []

    class Meddler(Job):
        def perform(self) -> None:
            MEDDLERS[meddle]()

    def body() -> None:
        run_job(probe(None, None), context=worker_thread_context)
        run_job(Meddler(), context=worker_thread_context)
        state.append((translation.get_language(), timezone.get_current_timezone_name()))
        run_job(probe(None, None), context=worker_thread_context)

    on_job_thread(body)

    default = (settings.LANGUAGE_CODE, settings.TIME_ZONE)
    assert state == [default]
    assert seen == [default, default]


def test_the_asgiref_in_use_lets_the_check_after_a_job_compare_identities() -> None:
    # Otherwise every job pays for reading the language and time zone after it (correct, but slower).
    assert activelocale.FAST


def test_a_dedicated_job_thread_follows_a_change_of_the_default_language_and_time_zone() -> None:
    seen.clear()

    def body() -> None:
        run_job(probe(None, None), context=worker_thread_context)
        with override_settings(LANGUAGE_CODE="fr", TIME_ZONE="Europe/Paris"):
            run_job(probe(None, None), context=worker_thread_context)
            run_job(probe(None, None), context=worker_thread_context)
        run_job(probe(None, None), context=worker_thread_context)

    on_job_thread(body)

    default = (settings.LANGUAGE_CODE, settings.TIME_ZONE)
    assert seen == [default, ("fr", "Europe/Paris"), ("fr", "Europe/Paris"), default]


@pytest.mark.parametrize("signal", [signals.job_started, signals.job_succeeded])
def test_a_receiver_that_changes_the_language_between_jobs_does_not_leak_into_the_next_job(signal: Any) -> None:
    seen.clear()

    def meddle(**kwargs: Any) -> None:
        translation.activate("de")
        timezone.activate("Asia/Tokyo")

    def body() -> None:
        signal.connect(meddle)
        try:
            run_job(probe("fr", "Europe/Paris"), context=worker_thread_context)
            run_job(probe(settings.LANGUAGE_CODE, settings.TIME_ZONE), context=worker_thread_context)
        finally:
            signal.disconnect(meddle)
            translation.activate(settings.LANGUAGE_CODE)
            timezone.activate(settings.TIME_ZONE)

    on_job_thread(body)

    assert seen == [("fr", "Europe/Paris"), (settings.LANGUAGE_CODE, settings.TIME_ZONE)]


def test_a_failure_signal_receiver_makes_the_next_job_read_the_thread_state() -> None:
    seen.clear()

    def body() -> None:
        run_job(probe(settings.LANGUAGE_CODE, settings.TIME_ZONE), context=worker_thread_context)
        translation.activate("de")  # what a job_failed / job_retried receiver might do
        forget_thread_state()
        try:
            run_job(probe(settings.LANGUAGE_CODE, settings.TIME_ZONE), context=worker_thread_context)
        finally:
            translation.activate(settings.LANGUAGE_CODE)

    on_job_thread(body)

    assert seen == [(settings.LANGUAGE_CODE, settings.TIME_ZONE)] * 2


def test_a_signal_without_receivers_is_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sending builds the keyword arguments and calls into Django only to return at once: per job, for nothing.
    sent: list[Any] = []
    for signal in (signals.job_started, signals.job_succeeded):
        monkeypatch.setattr(signal, "send", lambda *args, **kwargs: sent.append(args) or [])
    seen.clear()

    run_job(probe(None, None), context=worker_thread_context)

    assert len(seen) == 1
    assert sent == []
