"""The overview, queues and workers pages with made-up reports; pausing and resuming a queue from the admin."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from kafka_jobs.dashboard.views import fleet
from kafka_jobs.exceptions import BrokerUnavailable, EnqueueError
from kafka_jobs.ops import Counters, QueueCommand, RecentError, RunningJob
from tests.dashboard_fakes import partition, report

pytestmark = pytest.mark.django_db

BASE = "/admin/kafka_jobs/dashboard/"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The reports and commands the pages read (edit them in a test)."""
    data: dict[str, Any] = {
        "reports": [
            report(
                "web-1:4242:abcd",
                queues=["default", "dlq"],
                partitions=[partition("default", 0, lag=12), partition("default", 1, lag=30, held=True)],
                running=[RunningJob("tests.jobs.SlowJob", "job-77", "default", 0, 99, NOW)],
                counters=Counters(succeeded=120, failed=3, retried=2, dead_lettered=1),
                recent_errors=[
                    RecentError(NOW, "tests.jobs.FailingJob", "j9", "dlq", 0, 5, "ValueError: nope", "retry")
                ],
            )
        ],
        "commands": {},
    }
    monkeypatch.setattr(fleet, "read_reports", lambda settings, timeout: data["reports"])
    monkeypatch.setattr(fleet, "read_queue_commands", lambda settings, timeout: data["commands"])
    return data


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    calls: list[tuple[str, str, str]] = []

    def sender(action: str) -> Any:
        def send(queue: str, *, by: str = "") -> QueueCommand:
            calls.append((action, queue, by))
            return QueueCommand(queue, action, "cmd-1", NOW, by)

        return send

    monkeypatch.setattr(fleet, "pause_queue", sender("pause"))
    monkeypatch.setattr(fleet, "resume_queue", sender("resume"))
    return calls


def client_for(*perms: str, csrf: bool = False) -> Client:
    account = User.objects.create_user(f"op-{uuid.uuid4().hex[:8]}", password="pw", is_staff=True)
    for codename in perms:
        account.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="kafka_jobs"))
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(account)
    return client


def test_the_overview_shows_workers_lag_running_jobs_and_failures(reports: dict[str, Any]) -> None:
    response = client_for("view_dashboard").get(BASE)

    text = response.content.decode()
    assert response.status_code == 200
    assert 'id="kj-workers">1<' in text and 'id="kj-lag">42<' in text and 'id="kj-running">1<' in text
    assert 'id="kj-succeeded">120<' in text and "1 dead-lettered" in text
    assert "web-1:4242" in text and "ValueError: nope" in text


def test_the_queues_page_shows_each_partition_and_offers_pause_to_operators(reports: dict[str, Any]) -> None:
    viewer = client_for("view_dashboard").get(f"{BASE}queues/").content.decode()
    operator = client_for("change_dashboard").get(f"{BASE}queues/").content.decode()

    assert 'data-partition="default/1"' in viewer and "held" in viewer
    assert 'data-partition="wide/5"' in viewer  # routed, no worker: unassigned
    assert "no live worker has this partition" in viewer
    assert 'value="Pause default"' not in viewer
    assert 'value="Pause default"' in operator and f'action="{BASE}queues/default/pause/"' in operator


def test_the_workers_page_shows_running_jobs(reports: dict[str, Any]) -> None:
    text = client_for("view_dashboard").get(f"{BASE}workers/").content.decode()

    assert "tests.jobs.SlowJob" in text and "job-77" in text and "default/0@99" in text


def test_pausing_a_queue_sends_the_command_logs_it_and_shows_the_confirmations(
    reports: dict[str, Any], sent: list[tuple[str, str, str]]
) -> None:
    client = client_for("view_dashboard", "change_dashboard")
    username = client.get(BASE).context["user"].username

    response = client.post(f"{BASE}queues/default/pause/")

    assert response.status_code == 302 and response["Location"] == f"{BASE}queues/"
    assert sent == [("pause", "default", username)]
    entry = LogEntry.objects.get()
    assert (entry.object_repr, entry.get_change_message()) == (
        "queue default",
        "Paused the queue default (command cmd-1).",
    )
    reports["commands"] = {"default": QueueCommand("default", "pause", "cmd-1", NOW, username)}
    page = client.get(response["Location"]).content.decode()
    assert (
        "Paused the queue default" in page and "0 of 1 workers confirmed" in page and 'value="Resume default"' in page
    )
    reports["reports"] = [report("web-1:4242:abcd", queues=["default", "dlq"], commands={"default": "cmd-1"})]
    assert "confirmed by all 1 worker" in client.get(f"{BASE}queues/").content.decode()

    client.post(f"{BASE}queues/default/resume/")
    assert sent[-1] == ("resume", "default", username)


def test_queue_actions_need_change_permission_post_and_csrf(
    reports: dict[str, Any], sent: list[tuple[str, str, str]]
) -> None:
    assert client_for("view_dashboard").post(f"{BASE}queues/default/pause/").status_code == 403
    assert client_for("change_dashboard").get(f"{BASE}queues/default/pause/").status_code == 405
    assert client_for("change_dashboard", csrf=True).post(f"{BASE}queues/default/pause/").status_code == 403
    assert client_for("change_dashboard").post(f"{BASE}queues/nope/pause/").status_code == 404
    assert sent == [] and not LogEntry.objects.exists()


def test_a_command_that_cannot_be_sent_is_shown_and_not_logged(
    reports: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(queue: str, *, by: str = "") -> QueueCommand:
        raise EnqueueError("broker away")

    monkeypatch.setattr(fleet, "pause_queue", fail)

    response = client_for("change_dashboard").post(f"{BASE}queues/default/pause/", follow=True)

    assert "Could not pause the queue default: broker away" in response.content.decode()
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("page", ["", "queues/", "workers/"])
def test_a_broker_that_is_down_gives_an_error_box(monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    def down(settings: Any, timeout: float) -> Any:
        raise BrokerUnavailable("Could not reach Kafka at 'nowhere:9092' within 5s")

    monkeypatch.setattr(fleet, "read_reports", down)

    response = client_for("view_dashboard").get(f"{BASE}{page}")

    assert response.status_code == 200
    assert "Kafka could not be read: Could not reach Kafka" in response.content.decode()


def test_no_worker_yet_says_how_to_start_one(reports: dict[str, Any]) -> None:
    reports["reports"] = []
    assert "No worker has reported yet" in client_for("view_dashboard").get(BASE).content.decode()
