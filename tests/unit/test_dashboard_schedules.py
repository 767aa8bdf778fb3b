"""The scheduled and recurring pages with fake inspection results: what they show, and a broker that is down."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from kafka_jobs.dashboard.views import schedules
from kafka_jobs.delays.inspection import TierState
from kafka_jobs.exceptions import BrokerUnavailable
from kafka_jobs.recurring.fires import FireRecord
from kafka_jobs.recurring.inspection import ScheduleState

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)  # for the filters; pages are rendered at the current time


@pytest.fixture
def client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def test_the_scheduled_page_shows_each_tier_with_its_waiting_count_and_next_release(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC)
    release = int((now + dt.timedelta(minutes=3)).timestamp() * 1000)
    tiers = [
        TierState("kafka_jobs.delay.5s", 5000, 2, True, waiting=7, next_release_ms=release),
        TierState("kafka_jobs.delay.1m", 60000, 2, True, waiting=0),
        TierState("kafka_jobs.delay.1h", 3600000, 0, False),
    ]
    monkeypatch.setattr(schedules, "tier_states", lambda settings, timeout: tiers)

    response = client.get("/admin/kafka_jobs/dashboard/scheduled/")

    text = response.content.decode()
    assert response.status_code == 200
    assert 'id="kj-delayed-total">7<' in text
    assert "kafka_jobs.delay.5s" in text
    assert "(in 2\xa0minutes" in text  # just under three minutes when the page is rendered
    assert "missing: run kafkatopics create" in text and "not in DELAY_TIERS" in text


def test_the_recurring_page_shows_next_tick_and_last_fire(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    now = dt.datetime.now(dt.UTC)
    fired = FireRecord("nightly", now - dt.timedelta(days=2), now - dt.timedelta(hours=5), "job-42", now)
    states = [
        ScheduleState("nightly", "app.jobs.Report", "cron 0 3 * * *", "latest", now + dt.timedelta(hours=2), fired),
        ScheduleState("new", "app.jobs.Sync", "every 1m", "latest", now + dt.timedelta(seconds=30), None),
    ]
    monkeypatch.setattr(schedules, "get_recurring", lambda: ("declared",))
    monkeypatch.setattr(schedules, "existing_topics", lambda settings, timeout: {})
    monkeypatch.setattr(schedules, "schedule_states", lambda settings, declared, timeout: states)

    text = client.get("/admin/kafka_jobs/dashboard/recurring/").content.decode()

    assert "app.jobs.Report" in text and "cron 0 3 * * *" in text and "job job-42" in text
    assert "5\xa0hours ago" in text
    assert "never (no scheduler has seen it yet)" in text


@pytest.mark.parametrize("path", ["scheduled", "recurring"])
def test_a_broker_that_is_down_gives_an_error_box(client: Client, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise BrokerUnavailable("Could not reach Kafka at 'nowhere:9092' within 5s")

    monkeypatch.setattr(schedules, "tier_states", down)
    monkeypatch.setattr(schedules, "get_recurring", lambda: ("declared",))
    monkeypatch.setattr(schedules, "existing_topics", down)

    response = client.get(f"/admin/kafka_jobs/dashboard/{path}/")

    assert response.status_code == 200
    assert "Kafka could not be read: Could not reach Kafka" in response.content.decode()


def test_times_near_now_are_shown_in_seconds_and_others_as_django_does() -> None:
    from kafka_jobs.templatetags.kafka_jobs_dashboard import relative, when

    assert relative(NOW + dt.timedelta(seconds=25), NOW) == "in 25s"
    assert relative(NOW - dt.timedelta(seconds=12), NOW) == "12s ago"
    assert relative(NOW + dt.timedelta(minutes=4), NOW) == "in 4\xa0minutes"
    assert relative(NOW - dt.timedelta(hours=3), NOW) == "3\xa0hours ago"
    assert relative(None, NOW) == ""
    assert when("2026-12-02T10:00:00+00:00") == dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)
    assert when("not a time") == "not a time"
