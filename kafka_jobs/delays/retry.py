"""Non-blocking retries (``active_job_topic(..., retry="delay")``): a failed job goes back through the tiers.

The failed message is committed like a finished one; the job is enqueued again to the same topic and
partition, with ``executions`` counting the runs so far and the backoff as its delay, so its partition
keeps flowing while it waits. Order among jobs of one key is not kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import clock
from ..conf import KafkaJobsSettings
from ..job import Job
from ..producer import OutgoingMessage
from ..serializer import get_serializer
from .headers import without_delay
from .messages import delayed_until


def retry_message(message: Any, job: Job, delay: float, settings: KafkaJobsSettings) -> OutgoingMessage:
    """Return the message that retries ``job`` (read from ``message``) ``delay`` seconds from now.

    The job keeps its id, arguments and message key, and goes to the partition it came from.
    """
    job.scheduled_at = clock.now() + dt.timedelta(seconds=delay)
    payload = get_serializer().dumps(job)
    again = OutgoingMessage(
        message.topic(),
        payload,
        key=message.key(),
        partition=message.partition(),
        headers=without_delay(message.headers()),
        description=f"retry of job {job.job_name} {job.job_id}",
    )
    return delayed_until(again, job.scheduled_at, settings)
