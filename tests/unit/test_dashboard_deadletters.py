"""The dead letter pages in the admin, with a fake DLQ: permissions, CSRF, the admin log, broker errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from kafka_jobs.dashboard.views import deadletters
from kafka_jobs.deadletter import ReplayResult
from kafka_jobs.exceptions import BrokerUnavailable, ConfigurationError, ReplayRefused
from tests.dashboard_fakes import FakeLetterSource, letter

pytestmark = pytest.mark.django_db

TOPIC = "dlq.dead"  # the DLQ of the "dlq" route in tests/kafka_routes.py
BASE = "/admin/kafka_jobs/dashboard/deadletters/"


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> FakeLetterSource:
    """Every DLQ topic is this fake of 10 messages (offsets 0..9 of partition 0)."""
    fake = FakeLetterSource(TOPIC)
    monkeypatch.setattr(deadletters, "open_topic", lambda topic: fake)
    return fake


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Record calls to the replay function kafkadlq uses, and replay what was asked for."""
    calls: list[dict[str, Any]] = []

    def replay(topic: str, **kwargs: Any) -> ReplayResult:
        calls.append({"topic": topic, **kwargs})
        offsets = kwargs["offsets"] or [(0, 0), (0, 1)]
        return ReplayResult(topic, replayed=[letter(p or 0, o, topic) for p, o in offsets])

    monkeypatch.setattr(deadletters, "replay_dead_letters", replay)
    yield calls


def user(*perms: str, staff: bool = True) -> User:
    account = User.objects.create_user(f"op-{uuid.uuid4().hex[:8]}", password="pw", is_staff=staff)
    for codename in perms:
        account.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="kafka_jobs"))
    return account


def client_for(*perms: str, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user(*perms))
    return client


def test_the_dashboard_permissions_exist_for_view_and_change_only() -> None:
    codenames = set(Permission.objects.filter(content_type__app_label="kafka_jobs").values_list("codename", flat=True))
    assert {"view_dashboard", "change_dashboard"} <= codenames
    assert not {"add_dashboard", "delete_dashboard"} & codenames


def test_anonymous_users_are_sent_to_the_login_page(source: FakeLetterSource) -> None:
    response = Client().get(BASE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_the_view_permission_are_refused(source: FakeLetterSource) -> None:
    assert client_for().get(BASE).status_code == 403
    assert client_for().get(f"{BASE}{TOPIC}/").status_code == 403


def test_the_index_lists_each_dlq_with_its_counts(source: FakeLetterSource) -> None:
    response = client_for("view_dashboard").get(BASE)

    assert response.status_code == 200
    text = response.content.decode()
    assert f'href="{BASE}{TOPIC}/"' in text and f'href="{BASE}dlq0.dead/"' in text
    assert [row["messages"] for row in response.context["rows"]] == [10] * len(response.context["rows"])
    assert source.closed


def test_the_dashboard_is_the_models_changelist_in_the_admin_index(source: FakeLetterSource) -> None:
    response = client_for("view_dashboard").get("/admin/")
    assert 'href="/admin/kafka_jobs/dashboard/"' in response.content.decode()


def test_a_topic_page_shows_the_newest_messages_with_their_job_and_error(source: FakeLetterSource) -> None:
    response = client_for("view_dashboard").get(f"{BASE}{TOPIC}/?size=3")

    assert response.status_code == 200
    page = response.context["page"]
    assert [d.offset for d in page.letters] == [9, 8, 7]
    text = response.content.decode()
    assert "tests.jobs.FailingJob" in text and "builtins.RuntimeError: failure 9" in text
    assert "<td>2026-12-02 10:00:00</td>" in text  # kj-dlq-failed-at, read as a time
    assert "?size=3&amp;before=7" in text  # the older page
    assert "Replay" not in text  # view permission only: no actions


def test_bad_query_parameters_show_the_newest_page_instead_of_failing(source: FakeLetterSource) -> None:
    query = "?partition=x&before=1.5&size=&state=bogus"
    response = client_for("view_dashboard").get(f"{BASE}{TOPIC}/{query}")

    assert response.status_code == 200
    assert response.context["partition"] == 0
    page = response.context["page"]
    assert page.letters[0].offset == 9 and not page.filters


def test_the_filters_are_applied_and_kept_in_the_paging_links(source: FakeLetterSource) -> None:
    response = client_for("view_dashboard").get(f"{BASE}{TOPIC}/?error=failure+3&job=failing")

    assert [d.offset for d in response.context["page"].letters] == [3]
    assert 'value="failure 3"' in response.content.decode()


def test_a_topic_that_is_not_a_routed_dlq_is_not_found(source: FakeLetterSource) -> None:
    assert client_for("view_dashboard").get(f"{BASE}some.other.topic/").status_code == 404
    assert client_for("view_dashboard").get(f"{BASE}{TOPIC}/?partition=7").status_code == 404


def test_a_broker_that_is_down_gives_an_error_box_not_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(topic: str) -> FakeLetterSource:
        raise BrokerUnavailable("Could not reach Kafka at '127.0.0.1:1' within 5s")

    monkeypatch.setattr(deadletters, "open_topic", down)
    client = client_for("view_dashboard")

    for path in (BASE, f"{BASE}{TOPIC}/", f"{BASE}{TOPIC}/0/3/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Kafka could not be read: Could not reach Kafka at" in response.content.decode(), path


def test_a_dlq_not_created_yet_says_so_on_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(topic: str) -> FakeLetterSource:
        raise ConfigurationError(f"The dead letter topic {topic!r} does not exist.")

    monkeypatch.setattr(deadletters, "open_topic", missing)
    response = client_for("view_dashboard").get(BASE)

    assert response.status_code == 200 and "not created yet" in response.content.decode()


def test_one_message_shows_its_headers_traceback_and_payload(source: FakeLetterSource) -> None:
    response = client_for("view_dashboard").get(f"{BASE}{TOPIC}/0/4/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "job-0-4" in text and "builtins.RuntimeError: failure 4" in text
    assert "Traceback (most recent call last):" in text
    assert "<code>custom</code>" in text and "tests.jobs.FailingJob" in text
    assert client_for("view_dashboard").get(f"{BASE}{TOPIC}/0/99/").status_code == 404


def test_replaying_needs_the_change_permission(source: FakeLetterSource, replays: list[dict[str, Any]]) -> None:
    client = client_for("view_dashboard")

    assert client.post(f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1"]}).status_code == 403
    assert client.get(f"{BASE}{TOPIC}/replay/").status_code == 403
    assert replays == []


def test_replaying_without_the_csrf_token_is_refused(source: FakeLetterSource, replays: list[dict[str, Any]]) -> None:
    client = client_for("view_dashboard", "change_dashboard", csrf=True)

    assert client.post(f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1"]}).status_code == 403
    assert replays == []


def test_replaying_selected_messages_uses_kafkadlqs_code_and_is_logged(
    source: FakeLetterSource, replays: list[dict[str, Any]]
) -> None:
    client = client_for("view_dashboard", "change_dashboard")
    page = client.get(f"{BASE}{TOPIC}/")
    assert 'name="offsets" value="0:9"' in page.content.decode()

    response = client.post(
        f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1", "0:3"], "force": "1", "next": f"{BASE}{TOPIC}/?job=x"}
    )

    assert response.status_code == 302 and response["Location"] == f"{BASE}{TOPIC}/?job=x"
    assert replays == [{"topic": TOPIC, "offsets": [(0, 1), (0, 3)], "force": True, "timeout": 60.0}]
    entry = LogEntry.objects.get()
    assert entry.action_flag == CHANGE and entry.object_repr == f"dead letters {TOPIC}"
    assert entry.get_change_message() == f"Replayed 2 message(s) of {TOPIC} to their source topic (0:1, 0:3), forced."
    shown = client.get(response["Location"]).content.decode()
    assert "Replayed 2 message(s)" in shown


def test_a_rows_own_button_replays_that_message_only(source: FakeLetterSource, replays: list[dict[str, Any]]) -> None:
    client = client_for("change_dashboard")

    client.post(f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1", "0:3"], "one": "0:5"})

    assert replays[0]["offsets"] == [(0, 5)] and replays[0]["force"] is False
    client.post(f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1"], "again": "0:6"})  # a replayed row's "Replay again"
    assert replays[1]["offsets"] == [(0, 6)] and replays[1]["force"] is True


def test_replaying_all_asks_first_then_replays_every_pending_message(
    source: FakeLetterSource, replays: list[dict[str, Any]]
) -> None:
    client = client_for("change_dashboard")

    confirm = client.get(f"{BASE}{TOPIC}/replay/")
    assert confirm.status_code == 200 and confirm.context["pending"] == 10
    assert replays == []

    response = client.post(f"{BASE}{TOPIC}/replay/", {"all": "1"})

    assert response.status_code == 302
    assert replays == [{"topic": TOPIC, "offsets": None, "force": False, "timeout": 60.0}]
    assert "Replayed all pending messages" in LogEntry.objects.get().get_change_message()


def test_a_refused_replay_is_shown_and_not_logged(source: FakeLetterSource, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(topic: str, **kwargs: Any) -> ReplayResult:
        raise ReplayRefused("0:1 of 'dlq.dead' were replayed already. Use --force to replay them again.")

    monkeypatch.setattr(deadletters, "replay_dead_letters", refuse)
    client = client_for("change_dashboard")

    response = client.post(f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1"]}, follow=True)

    assert "Replay failed: 0:1 of" in response.content.decode()
    assert not LogEntry.objects.exists()


def test_bad_or_missing_offsets_replay_nothing(source: FakeLetterSource, replays: list[dict[str, Any]]) -> None:
    client = client_for("change_dashboard")

    bad = client.post(f"{BASE}{TOPIC}/replay/", {"offsets": ["x:1"]}, follow=True)
    empty = client.post(f"{BASE}{TOPIC}/replay/", {}, follow=True)

    assert "Offsets are PARTITION:OFFSET" in bad.content.decode()
    assert "No messages selected" in empty.content.decode()
    assert replays == []


def test_next_urls_off_the_site_are_ignored(source: FakeLetterSource, replays: list[dict[str, Any]]) -> None:
    response = client_for("change_dashboard").post(
        f"{BASE}{TOPIC}/replay/", {"offsets": ["0:1"], "next": "https://evil.example/"}
    )
    assert response["Location"] == f"{BASE}{TOPIC}/"
