"""Django signals sent around every step of a job's life, for instrumentation.

Every signal's sender is the job class; keyword arguments are listed per signal. ``message`` is a
``MessageInfo`` (topic, partition, offset) or ``None`` when the job did not come from Kafka.
"""

from django.dispatch import Signal

job_enqueued = Signal()  # job
job_started = Signal()  # job, message
job_succeeded = Signal()  # job, message, duration, result
job_failed = Signal()  # job, message, duration, exception, will_retry
job_retried = Signal()  # job, message, exception, delay
job_discarded = Signal()  # job, message, exception
job_dead_lettered = Signal()  # job (or None if undecodable), message, exception, dlq_topic
