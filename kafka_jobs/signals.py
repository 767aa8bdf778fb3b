"""Django signals sent around every step of a job's life, for instrumentation.

Every signal's sender is the job class (``Job`` itself when the message could not be decoded into a job);
keyword arguments are listed per signal. ``message`` is a ``MessageInfo`` (topic, partition, offset, key)
or ``None`` when the job did not come from Kafka; ``duration`` is in seconds. The attempt is
``job.executions`` (1 for the first run).

In the worker, receivers of ``job_failed``, ``job_retried``, ``job_discarded`` and ``job_dead_lettered``
are called with ``send_robust``: an exception in a receiver is logged and does not change what happens to
the job. ``job_started`` and ``job_succeeded`` are sent inside the job's run: a receiver that raises there
fails the job. A signal nobody listens to is not sent at all: connecting no receiver costs the job path nothing.
"""

from django.dispatch import Signal

job_enqueued = Signal()  # job
job_started = Signal()  # job, message
job_succeeded = Signal()  # job, message, duration, result
job_failed = Signal()  # job, message, duration, exception, will_retry
job_retried = Signal()  # job, message, exception, delay (seconds before the next attempt)
job_discarded = Signal()  # job (None for an undecodable message skipped without a DLQ), message, exception
job_dead_lettered = Signal()  # job (None if the message could not be decoded), message, exception, dlq_topic
