"""One relay round with a fake sender (no broker): what is deleted, marked failed, or kept for later."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from kafka_jobs import Job, perform_all_later
from kafka_jobs.conf import get_settings
from kafka_jobs.outbox.claim import SqliteClaimer, claimer_for
from kafka_jobs.outbox.models import OutboxMessage
from kafka_jobs.outbox.relay import Relay
from kafka_jobs.outbox.sender import ACKNOWLEDGED, Outcome, Sender


class RelayedJob(Job):
    queue_as = "single"
    kafka_options = {"outbox": True}

    def perform(self, n: int) -> None:
        pass


class FakeSender(Sender):
    """Answer each row with the next prepared outcome; remember what was sent."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.sent: list[int] = []

    def send(self, rows: Sequence[OutboxMessage]) -> list[Outcome]:
        self.sent.extend(row.id for row in rows)
        return [self.outcomes.pop(0) for _ in rows]

    def close(self, timeout: float = 5.0) -> None:
        pass


@pytest.fixture
def three_rows(transactional_db: None) -> Iterator[list[int]]:
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={**settings.KAFKA_JOBS, "OUTBOX_BATCH_SIZE": 10}):
        with transaction.atomic():
            perform_all_later(RelayedJob(n) for n in range(3))
        yield list(OutboxMessage.objects.order_by("id").values_list("id", flat=True))


def relay_with(outcomes: list[Outcome]) -> tuple[Relay, FakeSender]:
    sender = FakeSender(outcomes)
    relay = Relay(get_settings(), "default", sender_factory=lambda _settings: sender)
    relay.sender = sender
    return relay, sender


def test_acknowledged_rows_are_deleted_unproducible_ones_failed_and_the_others_kept(three_rows: list[int]) -> None:
    relay, sender = relay_with([ACKNOWLEDGED, Outcome("too large", permanent=True), Outcome("timed out")])
    done = relay.relay_once()
    assert sender.sent == three_rows  # in id order
    assert (done.claimed, done.produced, done.failed, done.retry) == (3, 1, 1, 1)
    left = {row.id: row for row in OutboxMessage.objects.all()}
    assert sorted(left) == three_rows[1:]
    assert left[three_rows[1]].failed_at is not None and left[three_rows[1]].error == "too large"
    assert left[three_rows[2]].failed_at is None  # tried again next round

    relay.sender = sender
    sender.outcomes = [ACKNOWLEDGED]
    assert relay.relay_once().produced == 1  # the failed row is skipped: only the kept one is sent again
    assert sender.sent[-1] == three_rows[2]
    assert list(OutboxMessage.objects.values_list("id", flat=True)) == [three_rows[1]]
    assert relay.claimer is not None
    relay.claimer.close()  # run() does it when it stops


def test_a_burst_relay_returns_once_nothing_is_pending(three_rows: list[int]) -> None:
    relay, _ = relay_with([ACKNOWLEDGED, Outcome("too large", permanent=True), ACKNOWLEDGED])
    relay.run(burst=True)
    assert (relay.produced, relay.failed) == (2, 1)
    assert OutboxMessage.objects.filter(failed_at__isnull=True).count() == 0


def test_a_second_relay_on_one_sqlite_file_stands_by_until_the_first_stops(three_rows: list[int]) -> None:
    first, second = claimer_for("default"), claimer_for("default")
    assert isinstance(first, SqliteClaimer)
    try:
        assert [row.id for row in first.claim(10)] == three_rows
        assert second.claim(10) == []  # would produce the same rows twice
        first.close()
        assert [row.id for row in second.claim(10)] == three_rows
    finally:
        first.close()
        second.close()
