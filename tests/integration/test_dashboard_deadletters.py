"""The dead letter pages against a real broker: paging a large DLQ by offsets, and replay from the admin."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client, override_settings

from kafka_jobs.dashboard.letters import read_page
from kafka_jobs.dashboard.views import deadletters
from kafka_jobs.deadletter import DeadLetterTopic
from tests.integration.conftest import KafkaEnv
from tests.integration.test_failures import dead_letters, read_topic, run_burst, runs_of
from tests.jobs import FailingJob

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LARGE = 200_000


def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser(f"admin-{uuid.uuid4().hex[:6]}", password="pw"))
    return client


def test_the_newest_page_of_a_large_dlq_is_its_true_end_read_without_the_rest(kafka_env: KafkaEnv) -> None:
    # Produced in large batches: some brokers then list a high watermark below the end (Tansu: the last batch's
    # start), so the page must find the true end from a fetch, and still read only its window.
    topic = kafka_env.topic("dlq0.dead")
    producer = Producer({"bootstrap.servers": kafka_env.bootstrap, "linger.ms": 50})
    for i in range(LARGE):
        producer.produce(topic, b"x", headers=[("kj-dlq-exception-class", f"app.E{i}".encode())])
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0

    with DeadLetterTopic(topic, timeout=10) as dlq:
        started = time.monotonic()
        page = read_page(dlq, 0, size=20)
        newest = time.monotonic() - started
        older = read_page(dlq, 0, before=100_000, size=20)

    assert [d.offset for d in page.letters] == list(range(LARGE - 1, LARGE - 21, -1))
    assert page.letters[0].exception_class == f"app.E{LARGE - 1}"
    assert page.summary.messages == LARGE and page.summary.pending == LARGE
    assert [d.offset for d in older.letters] == list(range(99_999, 99_979, -1))
    assert newest < 5.0, f"the newest page took {newest:.1f}s"


def test_a_dead_lettered_job_is_listed_shown_and_replayed_from_the_admin(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = FailingJob.set(queue="dlq0").perform_later(log, 1)  # fails once (to the DLQ), then succeeds
    assert run_burst(kafka_env, "dlq0").proc.returncode == 0
    assert len(dead_letters(kafka_env, "dlq0")) == 1
    topic = kafka_env.topic("dlq0.dead")
    base = f"/admin/kafka_jobs/dashboard/deadletters/{topic}/"
    client = admin_client()

    listing = client.get(base).content.decode()
    detail = client.get(f"{base}0/0/").content.decode()
    response = client.post(f"{base}replay/", {"one": "0:0"}, follow=True)

    assert job.job_id in listing and "planned failure 1 of 1" in listing
    assert "Traceback (most recent call last)" in detail and "kj-dlq-source-topic" in detail
    assert f"Replayed 1 message(s) of {topic}" in response.content.decode()
    assert "replayed" in [d.state.value for d in response.context["page"].letters]
    assert LogEntry.objects.filter(object_repr=f"dead letters {topic}").count() == 1
    assert len(read_topic(kafka_env.bootstrap, kafka_env.topic("dlq0"))) == 2
    assert run_burst(kafka_env, "dlq0").proc.returncode == 0
    assert len(runs_of(log, job.job_id)) == 2  # ran again from the replay, and succeeded


def test_pages_render_an_error_box_when_the_broker_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadletters, "READ_TIMEOUT", 1.0)
    client = admin_client()

    with override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "BOOTSTRAP_SERVERS": "127.0.0.1:1"}):
        for path in ("/admin/kafka_jobs/dashboard/deadletters/", "/admin/kafka_jobs/dashboard/deadletters/dlq.dead/"):
            response = client.get(path)
            assert response.status_code == 200
            assert (
                "Kafka could not be read: Could not reach Kafka at &#x27;127.0.0.1:1&#x27;" in response.content.decode()
            )
