"""In Chromium: find a dead-lettered job in the admin, read its traceback, replay it and see it succeed."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_failures import dead_letters, run_burst, runs_of
from tests.jobs import FailingJob

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_an_operator_finds_a_dead_lettered_job_replays_it_and_it_succeeds(kafka_env: KafkaEnv, logged_in: Any) -> None:
    page = logged_in
    log = kafka_env.log_file()
    job = FailingJob.set(queue="dlq0").perform_later(log, 1)  # fails once (to the DLQ), then succeeds
    assert run_burst(kafka_env, "dlq0").proc.returncode == 0
    assert len(dead_letters(kafka_env, "dlq0")) == 1
    topic = kafka_env.topic("dlq0.dead")

    page.get_by_role("link", name="Dashboard").first.click()
    page.get_by_role("link", name="Dead letters").click()
    row = page.locator("#result_list tr", has_text=topic)
    expect(row).to_contain_text("1")  # one message, one pending
    screenshot(page, "deadletters")
    row.get_by_role("link", name=topic).click()

    letter = page.locator("tr.kj-letter", has_text=job.job_id)
    expect(letter).to_contain_text("tests.jobs.FailingJob")
    expect(letter).to_contain_text("planned failure 1 of 1")
    expect(letter).to_contain_text("pending")
    page.get_by_label("Job class").fill("FailingJob")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.kj-letter")).to_have_count(1)
    screenshot(page, "deadletters-topic")
    letter.get_by_role("link", name="0:0").click()

    expect(page.locator("pre.kj-traceback")).to_contain_text("RuntimeError: planned failure 1 of 1")
    expect(page.locator("#kj-headers")).to_contain_text("kj-dlq-source-topic")
    screenshot(page, "deadletters-message")
    page.get_by_role("button", name="Replay", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text(f"Replayed 1 message(s) of {topic}")
    expect(page.locator("#kj-letter")).to_contain_text("replayed")
    assert run_burst(kafka_env, "dlq0").proc.returncode == 0
    wait_for(lambda: len(runs_of(log, job.job_id)) == 2, timeout=10, message="the replayed job did not run")
