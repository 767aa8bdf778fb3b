"""Running one job: context applied around it and reset afterwards, whatever the job does."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone, translation

from kafka_jobs import Job
from kafka_jobs.execution import job_context, run_job, worker_thread_context

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
