"""Pages of a DLQ without a broker: a page reads only its window, whatever the size of the topic."""

from __future__ import annotations

import pytest

from kafka_jobs.dashboard.letters import Filters, read_letter, read_page, summarize
from kafka_jobs.deadletter import Ledger, ReplayState
from kafka_jobs.deadletter.ledger import ledger_record
from tests.dashboard_fakes import FakeLetterSource, letter

MILLION = 1_000_000


def ledger_of(replayed: dict[int, list[int]], passed_over: dict[int, list[int]] | None = None) -> Ledger:
    return Ledger.fold([ledger_record(replayed, passed_over or {}, forced=False)])


def test_the_newest_page_of_a_million_message_partition_reads_only_that_page() -> None:
    source = FakeLetterSource(bounds={0: (0, MILLION)})

    page = read_page(source, 0, size=50)

    assert [d.offset for d in page.letters] == list(range(MILLION - 1, MILLION - 51, -1))
    assert source.read_count == 50
    assert (page.before, page.older, page.newer) == (MILLION, MILLION - 50, None)


def test_an_older_page_reads_below_its_cursor_and_links_both_ways() -> None:
    source = FakeLetterSource(bounds={0: (100, 1000)})

    page = read_page(source, 0, before=500, size=20)

    assert [d.offset for d in page.letters] == list(range(499, 479, -1))
    assert source.reads == [(0, 480, 500)]
    assert (page.older, page.newer) == (480, 520)


def test_the_oldest_page_stops_at_the_first_offset_kept() -> None:
    source = FakeLetterSource(bounds={0: (100, 1000)})

    page = read_page(source, 0, before=110, size=20)

    assert [d.offset for d in page.letters] == list(range(109, 99, -1))
    assert page.older is None
    assert page.summary.messages == 900


def test_a_cursor_beyond_the_bounds_is_clamped() -> None:
    source = FakeLetterSource(bounds={0: (0, 10)})

    assert read_page(source, 0, before=99, size=5).before == 10
    assert read_page(source, 0, before=-5, size=5).letters == []


def test_an_unknown_partition_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="has no partition 3"):
        read_page(FakeLetterSource(), 3)


def test_a_filter_reads_its_scan_window_at_once_and_the_next_page_starts_below_the_last_match() -> None:
    def make(partition: int, offset: int):
        name = "app.Mail" if offset % 100 == 0 else "app.Other"
        return letter(partition, offset, job_name=name)

    source = FakeLetterSource(bounds={0: (0, MILLION)}, make=make)

    page = read_page(source, 0, size=3, filters=Filters(job="MAIL"), scan_limit=1000)

    assert [d.offset for d in page.letters] == [MILLION - 100, MILLION - 200, MILLION - 300]
    assert page.older == MILLION - 300  # the next page starts below the last one shown
    assert source.reads == [(0, MILLION - 1000, MILLION)]  # one read of the scan window


def test_a_filter_stops_at_the_scan_limit_on_a_million_messages_without_a_match() -> None:
    source = FakeLetterSource(bounds={0: (0, MILLION)})

    page = read_page(source, 0, size=50, filters=Filters(error="never matches"), scan_limit=2000)

    assert page.letters == []
    assert source.read_count == 2000
    assert (page.scanned_from, page.scanned, page.older) == (MILLION - 2000, 2000, MILLION - 2000)


def test_filters_match_job_error_and_state() -> None:
    replayed = letter(0, 1, state=ReplayState.REPLAYED)
    pending = letter(0, 2, exception_class="app.TimeoutError", exception_message="slow")

    assert Filters(job="failingjob").match(pending)
    assert not Filters(job="other").match(pending)
    assert Filters(error="timeouterror: SLOW").match(pending)
    assert not Filters(error="timeout").match(replayed)
    assert Filters(state="replayed").match(replayed) and not Filters(state="replayed").match(pending)
    assert Filters.from_query({"state": "bogus", "job": " x "}) == Filters(job="x")
    assert not Filters()


def test_the_replay_state_comes_from_the_ledger() -> None:
    source = FakeLetterSource(bounds={0: (0, 5)}, ledger=ledger_of({0: [1, 2]}, {0: [4]}))

    page = read_page(source, 0)

    assert {d.offset: d.state.value for d in page.letters} == {
        4: "passed over",
        3: "pending",
        2: "replayed",
        1: "replayed",
        0: "pending",
    }


def test_pending_counts_come_from_the_watermarks_and_the_ledger_only() -> None:
    ledger = ledger_of({0: [0, 1, 2, 7], 1: [5]}, {0: [3]})

    summaries = summarize({0: (2, 10), 1: (0, MILLION)}, ledger)

    # Partition 0 keeps offsets 2..9: 2 and 7 replayed, 3 passed over; 0 and 1 are gone (retention).
    assert [(s.partition, s.messages, s.pending) for s in summaries] == [(0, 8, 5), (1, MILLION, MILLION - 1)]


def test_read_letter_reads_one_offset_or_none() -> None:
    source = FakeLetterSource(bounds={0: (0, MILLION)})

    found = read_letter(source, 0, 123_456)

    assert found is not None and found.offset == 123_456
    assert source.read_count == 1
    assert read_letter(source, 0, MILLION) is None
    assert read_letter(source, 5, 0) is None
