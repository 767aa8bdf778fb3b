"""In Chromium, with a real worker: see it and its lag, see its running job, pause a queue and see jobs stop,
resume it and see them run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from kafka_jobs.producer import get_producer
from tests.browser.conftest import screenshot
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import GatedJob, RecordJob, read_records

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.kafka_jobs_overrides({"REPORT_INTERVAL": 0.5}),
]

WAIT = 30.0


def reload_until(page: Any, check: Callable[[], bool], message: str) -> None:
    """Reload ``page`` until ``check()`` holds (the pages show the latest reports when loaded)."""

    def attempt() -> bool:
        page.reload()
        return check()

    wait_for(
        attempt, timeout=WAIT, interval=0.2, message=lambda: f"{message}; the page said:\n{text_of(page, '#content')}"
    )


def text_of(page: Any, selector: str) -> str:
    locator = page.locator(selector)
    return locator.first.inner_text() if locator.count() else ""


def runs(log: str, tag: str) -> int:
    return sum(1 for r in read_records(log) if r.get("event") == "ran" and r.get("args", [None])[0] == tag)


def test_an_operator_sees_a_worker_its_lag_and_running_job_then_pauses_and_resumes_a_queue(
    kafka_env: KafkaEnv, logged_in: Any, tmp_path: Path
) -> None:
    page = logged_in
    log, gate = kafka_env.log_file(), tmp_path / "gate"
    worker = kafka_env.start_worker("--queues", "single", "default")
    # A first job runs and is committed; then one holds the single partition of "single" and five more wait
    # behind it: a lag of 6 (from the committed offset to the end) until the gate opens.
    RecordJob.set(queue="single").perform_later(log, "first")
    get_producer().flush(10)
    wait_for(lambda: runs(log, "first"), timeout=WAIT, message="the first job did not run")
    GatedJob.perform_later(log, str(gate), tag="held")
    for i in range(5):
        RecordJob.set(queue="single").perform_later(log, f"behind-{i}")
    get_producer().flush(10)

    page.get_by_role("link", name="Dashboard").first.click()
    reload_until(page, lambda: text_of(page, "#kj-workers") == "1", "the worker never showed up as alive")
    reload_until(page, lambda: text_of(page, "#kj-lag") == "6", "the lag of 6 never showed")
    expect(page.locator("#kj-workers-table")).to_contain_text(f"{worker.pid}")
    expect(page.locator("#kj-running")).to_have_text("1")
    screenshot(page, "overview")

    page.get_by_role("link", name="Workers", exact=True).click()
    expect(page.locator(".kj-running-job")).to_contain_text("tests.jobs.GatedJob")
    screenshot(page, "workers")
    gate.touch()
    wait_for(lambda: runs(log, "behind-4"), timeout=WAIT, message="the jobs behind the gated one did not run")

    page.get_by_role("link", name="Queues").click()
    single = page.locator("#queue-single")
    reload_until(page, lambda: text_of(page, "#queue-single .kj-lag") == "0", "the lag did not come back to 0")
    single.get_by_role("button", name="Pause single").click()
    expect(page.locator(".messagelist")).to_contain_text("Paused the queue single")
    reload_until(
        page, lambda: "confirmed by all 1 worker" in text_of(page, "#queue-single"), "the pause was not confirmed"
    )
    expect(single.locator(".kj-partition")).to_contain_text("held")

    for i in range(3):
        RecordJob.set(queue="single").perform_later(log, f"paused-{i}")
    RecordJob.perform_later(log, "other-queue")  # the worker goes on with the queues not paused
    get_producer().flush(10)
    wait_for(lambda: runs(log, "other-queue"), timeout=WAIT, message="the queue that is not paused did not run")
    assert [runs(log, f"paused-{i}") for i in range(3)] == [0, 0, 0]
    screenshot(page, "queues")

    single.get_by_role("button", name="Resume single").click()
    expect(page.locator(".messagelist")).to_contain_text("Resumed the queue single")
    wait_for(lambda: runs(log, "paused-2"), timeout=WAIT, message="the resumed queue did not run its jobs")
    reload_until(page, lambda: "running" in text_of(page, "#queue-single .kj-queue-state"), "not shown running")
    expect(single.locator(".kj-partition")).not_to_contain_text("held")
