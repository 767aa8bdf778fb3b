"""Job ids: version 4 UUIDs, unique, and never shared between a process and its forked children."""

from __future__ import annotations

import os
import uuid

from kafka_jobs.ids import new_job_id


def test_job_ids_are_version_4_uuids_in_their_canonical_text() -> None:
    for _ in range(2000):
        text = new_job_id()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_job_ids_do_not_repeat_across_many_blocks_of_random_bytes() -> None:
    ids = {new_job_id() for _ in range(20_000)}
    assert len(ids) == 20_000


def test_a_forked_child_does_not_reuse_the_parents_random_bytes() -> None:
    new_job_id()  # the parent now holds a block of random bytes the child would otherwise copy
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave without running anything else
        os.close(read)
        os.write(write, ",".join(new_job_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_job_id() for _ in range(10)}
    assert len(child) == 10 and not child & parent
