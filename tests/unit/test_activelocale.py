"""The caller's language and time zone as ``activelocale.current()`` remembers them: always Django's answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from django.test import override_settings
from django.utils import timezone, translation

from kafka_jobs import activelocale


@pytest.fixture(autouse=True)
def nothing_active() -> Iterator[None]:
    """Start with nothing activated on this thread: an earlier test (a job run here) may have left the defaults."""
    translation.deactivate()
    timezone.deactivate()
    yield
    translation.deactivate()
    timezone.deactivate()


def django_answer() -> tuple[str | None, str]:
    return translation.get_language(), timezone.get_current_timezone_name()


def test_the_installed_asgiref_takes_the_fast_path() -> None:
    assert activelocale.FAST


def test_follows_activate_override_and_deactivate() -> None:
    seen = [activelocale.current()]
    with translation.override("fr"):
        seen.append(activelocale.current())
        with timezone.override("Asia/Tokyo"):
            seen.append(activelocale.current())
            translation.activate("de")
            seen.append(activelocale.current())
            translation.deactivate()
            seen.append(activelocale.current())
            assert seen[-1] == django_answer()
        seen.append(activelocale.current())
    seen.append(activelocale.current())
    assert seen == [
        ("en-us", "UTC"),
        ("fr", "UTC"),
        ("fr", "Asia/Tokyo"),
        ("de", "Asia/Tokyo"),
        ("en-us", "Asia/Tokyo"),
        ("en-us", "UTC"),  # still deactivated: only the end of override("fr") restores a language
        ("en-us", "UTC"),
    ]


def test_deactivate_all_gives_no_language() -> None:
    with translation.override(None):
        assert activelocale.current() == django_answer() == (None, "UTC")


def test_follows_the_settings_when_nothing_is_active() -> None:
    assert activelocale.current() == ("en-us", "UTC")
    with override_settings(LANGUAGE_CODE="nl", TIME_ZONE="America/Chicago"):
        assert activelocale.current() == django_answer() == ("nl", "America/Chicago")
    with override_settings(USE_I18N=False, LANGUAGE_CODE="it"):
        assert activelocale.current() == django_answer() == ("it", "UTC")
    assert activelocale.current() == ("en-us", "UTC")


def test_each_thread_sees_its_own() -> None:
    ready, answered = threading.Event(), threading.Event()
    seen: dict[str, tuple[str | None, str]] = {}

    def other() -> None:
        ready.wait(10)
        seen["other"] = activelocale.current()  # nothing active in this thread
        answered.set()

    thread = threading.Thread(target=other)
    thread.start()
    with translation.override("fr"), timezone.override("Europe/Paris"):
        seen["main"] = activelocale.current()
        ready.set()
        assert answered.wait(10)
    thread.join(10)
    assert seen == {"main": ("fr", "Europe/Paris"), "other": ("en-us", "UTC")}


def test_each_task_sees_its_own() -> None:
    async def answer(language: str, zone: str) -> tuple[str | None, str]:
        translation.activate(language)
        timezone.activate(zone)
        await asyncio.sleep(0)  # the other task runs and activates its own in between
        return activelocale.current()

    async def both() -> list[tuple[str | None, str]]:
        return list(await asyncio.gather(answer("fr", "Europe/Paris"), answer("de", "Asia/Tokyo")))

    assert asyncio.run(both()) == [("fr", "Europe/Paris"), ("de", "Asia/Tokyo")]
    assert activelocale.current() == ("en-us", "UTC")
