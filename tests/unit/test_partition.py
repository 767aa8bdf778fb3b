"""The worker's partition bookkeeping: the commit point and retry counts, accepting messages, lanes."""

from __future__ import annotations

import pytest

from kafka_jobs import offsetgap
from kafka_jobs.routing import active_job_topic
from kafka_jobs.worker.partition import CommitPoint, OffsetTracker, PartitionState

LIMIT = 100


def tracker_with(*offsets: int) -> OffsetTracker:
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.add(offset)
    return tracker


def partition() -> PartitionState:
    return PartitionState("jobs", 0, active_job_topic("jobs"))


def buffer(state: PartitionState, offset: int, key: object = None) -> None:
    """Accept ``offset`` and queue it in the lane for ``key``, as the listener does."""
    assert state.accept(offset, LIMIT)
    state.lane(key).messages.append(offset)


# OffsetTracker -------------------------------------------------------------------------------------------


def test_nothing_finished_means_nothing_to_commit() -> None:
    tracker = tracker_with(5, 6)

    assert tracker.position is None
    assert len(tracker) == 2


def test_in_order_finishes_advance_the_commit_point_past_each_job() -> None:
    tracker = tracker_with(5, 6, 7)

    tracker.finish(5)
    assert tracker.position == 6
    tracker.finish(6)
    assert tracker.position == 7
    tracker.finish(7)
    assert tracker.position == 8
    assert len(tracker) == 0


def test_commit_point_is_the_lowest_unfinished_offset() -> None:
    tracker = tracker_with(10, 11, 12)

    tracker.finish(11)
    tracker.finish(12)
    assert tracker.position is None  # 10 still runs: committing 13 would lose it on a crash

    tracker.finish(10)
    assert tracker.position == 13


def test_out_of_order_finishes_as_in_virtual_partitions() -> None:
    tracker = tracker_with(0, 1, 2, 3, 4, 5)

    for offset in (5, 3, 1):
        tracker.finish(offset)
    assert tracker.position is None
    tracker.finish(0)
    assert tracker.position == 2
    tracker.finish(4)
    assert tracker.position == 2
    tracker.finish(2)
    assert tracker.position == 6
    assert len(tracker) == 0


def test_gaps_in_offsets_are_skipped_by_the_commit_point() -> None:
    tracker = tracker_with(3, 7, 20)  # compacted topic or transaction markers

    tracker.finish(3)
    tracker.finish(7)
    assert tracker.position == 8
    tracker.finish(20)
    assert tracker.position == 21


# PartitionState.accept -----------------------------------------------------------------------------------


def test_accept_takes_new_offsets_and_tracks_them() -> None:
    state = partition()

    assert state.accept(4, LIMIT)
    assert state.accept(5, LIMIT)
    assert state.next_offset == 6
    assert len(state.tracker) == 2


def test_accept_refuses_offsets_already_buffered() -> None:
    state = partition()
    state.accept(4, LIMIT)
    state.accept(5, LIMIT)

    assert not state.accept(5, LIMIT)
    assert not state.accept(3, LIMIT)
    assert state.next_offset == 6
    assert len(state.tracker) == 2


def test_accept_refuses_while_paused() -> None:
    state = partition()
    state.accept(0, LIMIT)
    state.paused = True

    assert not state.accept(1, LIMIT)
    assert state.next_offset == 1  # resumed from here: the refused message is fetched again


def test_accept_refuses_after_revocation() -> None:
    state = partition()
    state.revoked = True

    assert not state.accept(0, LIMIT)
    assert state.next_offset is None
    assert len(state.tracker) == 0


def test_a_full_partition_refuses_and_pauses_so_nothing_is_skipped() -> None:
    state = partition()
    for offset in range(3):
        assert state.accept(offset, 3)
        state.lane(None).messages.append(offset)

    assert not state.accept(3, 3)
    assert state.paused
    assert not state.accept(4, 3)  # a later message of the same fetch is refused too
    assert state.next_offset == 3


def test_a_message_after_a_gap_is_refused_until_the_partition_is_read_again_from_the_gap() -> None:
    state = partition()
    state.accept(0, LIMIT)
    state.accept(1, LIMIT)

    assert not state.accept(5, LIMIT)  # 2-4 not received: accepted, the commit point would skip them
    assert state.seek_needed
    assert not state.accept(6, LIMIT)  # the rest of that fetch too
    assert state.next_offset == 2
    assert list(state.tracker._received) == [0, 1]

    state.seek_needed = False  # the listener sought back to next_offset
    assert state.accept(2, LIMIT)
    assert state.accept(3, LIMIT)
    assert state.next_offset == 4


def test_a_gap_still_there_when_read_again_soon_after_is_read_again() -> None:
    state = partition()
    state.accept(0, LIMIT)

    assert not state.accept(3, LIMIT)
    state.seek_needed = False
    assert not state.accept(3, LIMIT)  # the earlier batch may not be readable yet: not trusted so soon
    assert state.seek_needed
    assert state.next_offset == 1


def test_a_real_gap_is_accepted_when_its_offset_still_comes_first_gap_confirm_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = partition()
    state.accept(0, LIMIT)
    assert not state.accept(3, LIMIT)
    state.seek_needed = False

    monkeypatch.setattr(offsetgap, "GAP_CONFIRM", 0.0)  # as if GAP_CONFIRM had passed
    assert state.accept(3, LIMIT)  # read again from 1, and 3 still came first: offsets 1-2 hold no job
    assert state.next_offset == 4
    assert not state.seek_needed


# Dropping unstarted jobs and the commit point -------------------------------------------------------------


def test_dropped_jobs_are_never_committed_past() -> None:
    state = partition()
    for offset in range(3):
        buffer(state, offset)
    state.lane(None).messages.popleft()
    state.running_offsets.add(0)

    state.drop_unstarted()
    state.tracker.finish(0)
    state.running_offsets.discard(0)

    assert state.buffered == 0
    assert state.commit_point() == CommitPoint(1, {})  # 1 and 2 never ran: they are fetched again after a restart


def test_dropped_job_blocks_later_finished_lane_in_virtual_partitions() -> None:
    state = partition()
    buffer(state, 0, key="a")
    buffer(state, 1, key="b")
    buffer(state, 2, key="c")
    for key in ("a", "c"):
        state.lane(key).messages.popleft()
    state.tracker.finish(2)  # lane c finished first

    state.drop_unstarted()  # revoked: offset 1 (lane b) never started
    state.tracker.finish(0)

    assert state.commit_point() == CommitPoint(1, {})


def test_commit_point_is_reported_once_per_move() -> None:
    state = partition()
    buffer(state, 0)
    buffer(state, 1)
    assert state.commit_point() is None

    state.tracker.finish(0)
    assert state.commit_point() == CommitPoint(1, {})
    state.sent = CommitPoint(1, {})
    assert state.commit_point() is None
    state.tracker.finish(1)
    assert state.commit_point() == CommitPoint(2, {})


def test_a_failed_job_changes_the_commit_point_by_its_retry_count() -> None:
    state = partition()
    for offset in range(3):
        buffer(state, offset)
    state.tracker.finish(0)
    state.sent = CommitPoint(1, {})

    state.failures[1] = 1  # the job at 1 failed once and waits to retry
    assert state.commit_point() == CommitPoint(1, {1: 1})
    state.sent = state.commit_point()
    state.failures[1] = 2
    assert state.commit_point() == CommitPoint(1, {1: 2})


def test_a_job_failing_before_any_finished_commits_its_count_at_its_own_offset() -> None:
    state = partition()
    buffer(state, 7)
    buffer(state, 8)
    assert state.commit_point() is None

    state.failures[7] = 1

    assert state.commit_point() == CommitPoint(7, {7: 1})


def test_retry_counts_of_virtual_lanes_travel_with_the_lowest_unfinished_offset() -> None:
    state = partition()
    for offset, key in enumerate("abcd"):
        buffer(state, offset, key=key)
    state.tracker.finish(0)
    state.failures[1] = 3  # lane b's job failed three times; lanes c and d go on
    state.tracker.finish(2)
    state.failures[3] = 1

    assert state.commit_point() == CommitPoint(1, {1: 3, 3: 1})


# Lanes ---------------------------------------------------------------------------------------------------


def test_lane_is_created_once_per_key() -> None:
    state = partition()

    assert state.lane("k") is state.lane("k")
    assert state.lane("k") is not state.lane("other")
    assert {lane.key for lane in state} == {"k", "other"}


def test_lane_is_runnable_only_with_messages_and_no_owner_or_backoff() -> None:
    state = partition()
    lane = state.lane(None)
    assert not lane.runnable(now=100.0)  # empty

    lane.messages.append(0)
    assert lane.runnable(now=100.0)

    lane.retry_at = 150.0
    assert not lane.runnable(now=100.0)
    assert state.backing_off
    assert lane.runnable(now=150.0)
    lane.retry_at = None

    lane.running = True
    assert not lane.runnable(now=100.0)
    lane.running = False
    lane.queued = True
    assert not lane.runnable(now=100.0)
    lane.queued = False

    state.stopping = True
    assert not lane.runnable(now=100.0)
    state.stopping = False
    state.revoked = True
    assert not lane.runnable(now=100.0)


def test_buffered_and_running_count_across_lanes() -> None:
    state = partition()
    buffer(state, 0, key="a")
    buffer(state, 1, key="b")
    buffer(state, 2, key="b")

    assert state.buffered == 3
    assert not state.running
    state.running_offsets.add(0)
    assert state.running
