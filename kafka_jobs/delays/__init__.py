"""Delayed jobs that never block other jobs: a ladder of delay tiers and the forwarder that drains it.

A job enqueued with ``set(wait=...)`` is produced to the tier topic of its remaining delay, not to its
queue's topic; the forwarder moves it to the next tier or to its queue topic when it is due. Modules:
``tiers`` (the ladder), ``headers`` (what a tier message carries), ``messages`` (where a message goes
next), ``window`` (a tier partition's held messages), ``forwarder`` (the consumer loop), ``inspection``
(what waits, for ``manage.py kafkascheduled``).
"""
