"""Dead letter queue messages: the original key and value, plus headers saying where and why it failed."""

from __future__ import annotations

import datetime as dt
import traceback
from typing import Any

from ..producer import OutgoingMessage

HEADER_PREFIX = "kj-dlq-"
MAX_TRACEBACK = 4000


def _text(value: Any) -> bytes:
    return str(value).encode("utf-8", "replace")


def dead_letter_message(
    message: Any, dlq_topic: str, *, group_id: str, attempts: int, exc: BaseException
) -> OutgoingMessage:
    """Build the DLQ copy of ``message`` (a confluent-kafka Message) for failure ``exc``."""
    trace = "".join(traceback.format_exception(exc))
    if len(trace) > MAX_TRACEBACK:
        trace = "...\n" + trace[-MAX_TRACEBACK:]
    headers = [(k, v) for k, v in (message.headers() or []) if not k.startswith(HEADER_PREFIX)]
    headers += [
        (HEADER_PREFIX + "source-topic", _text(message.topic())),
        (HEADER_PREFIX + "source-partition", _text(message.partition())),
        (HEADER_PREFIX + "source-offset", _text(message.offset())),
        (HEADER_PREFIX + "consumer-group", _text(group_id)),
        (HEADER_PREFIX + "attempts", _text(attempts)),
        (HEADER_PREFIX + "exception-class", _text(f"{type(exc).__module__}.{type(exc).__qualname__}")),
        (HEADER_PREFIX + "exception-message", _text(str(exc))[:2000]),
        (HEADER_PREFIX + "traceback", _text(trace)),
        (HEADER_PREFIX + "failed-at", _text(dt.datetime.now(dt.UTC).isoformat())),
    ]
    return OutgoingMessage(
        dlq_topic,
        message.value() or b"",
        key=message.key(),
        headers=headers,
        description=f"dead letter of {message.topic()}/{message.partition()}@{message.offset()}",
    )


def dlq_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Return the ``kj-dlq-*`` headers of a DLQ message as text, without the prefix."""
    return {
        key[len(HEADER_PREFIX) :]: (value or b"").decode("utf-8", "replace")
        for key, value in headers or []
        if key.startswith(HEADER_PREFIX)
    }
