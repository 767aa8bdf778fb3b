"""The dead letter queue: the DLQ copy of a failed message, and the tools to read and replay a DLQ topic.

A DLQ message keeps the original key and value (byte for byte) and original headers, and adds
``kj-dlq-*`` headers saying where it came from and why it failed. Replay produces it back to its source
topic without those headers and with ``kj-replayed-from: <dlq topic>/<partition>/<offset>``.

Replaying each message once: the consumer group ``<GROUP_ID>.dlq-replay`` keeps one committed offset per
DLQ partition, the *replay cursor*. Everything below the cursor has been dealt with (replayed, or passed
over by an explicit selection); everything at or above it is pending.

- ``replay --all`` replays every pending message and moves the cursor to the end of the partition, so a
  second ``--all`` replays nothing.
- ``replay --offsets 3 7`` replays those messages and moves the cursor past the highest one; pending
  messages in between that were not selected are passed over (reported, and left out of later ``--all``).
  An offset below the cursor is refused unless ``force`` is given.

This needs nothing from the broker beyond committed offsets (commit metadata, which Tansu drops, is not
used). The cursor is committed after the replayed messages are acknowledged, so a crash in between may
replay them again (at least once, never lost). Two replays running at the same time are not coordinated.
Reading a DLQ assigns its partitions directly (no group membership, no commit), so it disturbs neither
the worker's group nor the replay cursor.
"""

from .message import (
    HEADER_PREFIX,
    ID_HEADER,
    JOB_HEADER,
    MAX_TRACEBACK,
    REPLAYED_FROM,
    DeadLetter,
    dead_letter_message,
    dlq_headers,
    trimmed_traceback,
)
from .reader import DeadLetterTopic, read_dead_letters, replay_group
from .replay import ReplayResult, parse_offset, replay_dead_letters, replay_message

__all__ = [
    "HEADER_PREFIX",
    "ID_HEADER",
    "JOB_HEADER",
    "MAX_TRACEBACK",
    "REPLAYED_FROM",
    "DeadLetter",
    "DeadLetterTopic",
    "ReplayResult",
    "dead_letter_message",
    "dlq_headers",
    "parse_offset",
    "read_dead_letters",
    "replay_dead_letters",
    "replay_group",
    "replay_message",
    "trimmed_traceback",
]
