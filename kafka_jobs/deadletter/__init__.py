"""The dead letter queue: the DLQ copy of a failed message, writing it, and the tools to read and replay a
DLQ topic.

A DLQ message keeps the original key and value (byte for byte) and original headers, and adds
``kj-dlq-*`` headers saying where it came from and why it failed. A copy that can never be written (too
large for the DLQ topic, or refused for good) becomes a *stub*: the ``kj-dlq-*`` headers and the job's
name and id, without the value, with ``kj-dlq-stub`` saying why. Replay produces a message back to its
source topic without those headers and with ``kj-replayed-from: <dlq topic>/<partition>/<offset>``.

Replaying each message once: the replay ledger (topic ``<dlq topic>.replays``, see ``ledger``) records
every replay, so each DLQ message is *replayed*, *passed over* or *pending*.

- ``replay --all`` replays every pending message and passes over pending stubs (nothing to replay), so
  a second ``--all`` replays nothing.
- ``replay --offsets 3 7`` reads and replays exactly those messages; the others keep their state. A
  message replayed already is refused unless ``force`` is given.

The ledger is written after the replayed messages are acknowledged, so a crash in between may replay them
again (at least once, never lost). Two replays running at the same time are not coordinated. Reading a DLQ
assigns its partitions directly (no group membership, no commit), so it disturbs no consumer group.
"""

from .ledger import Ledger, ReplayState, ledger_topic
from .message import (
    HEADER_PREFIX,
    ID_HEADER,
    JOB_HEADER,
    REPLAYED_FROM,
    STUB_HEADER,
    DeadLetter,
    dead_letter_message,
    dlq_headers,
    stub_of,
)
from .reader import DeadLetterTopic, read_dead_letters
from .replay import ReplayResult, parse_offset, replay_dead_letters, replay_message
from .text import MAX_EXCEPTION_MESSAGE, MAX_TRACEBACK, trimmed_traceback

__all__ = [
    "HEADER_PREFIX",
    "ID_HEADER",
    "JOB_HEADER",
    "MAX_EXCEPTION_MESSAGE",
    "MAX_TRACEBACK",
    "REPLAYED_FROM",
    "STUB_HEADER",
    "DeadLetter",
    "DeadLetterTopic",
    "Ledger",
    "ReplayResult",
    "ReplayState",
    "dead_letter_message",
    "dlq_headers",
    "ledger_topic",
    "parse_offset",
    "read_dead_letters",
    "replay_dead_letters",
    "replay_message",
    "stub_of",
    "trimmed_traceback",
]
