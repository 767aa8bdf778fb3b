"""The two topics of the operations side: worker reports and queue commands (both compacted, one partition)."""

from __future__ import annotations

from ..conf import KafkaJobsSettings

# Each worker's latest status report, keyed by its worker id.
REPORTS_TOPIC = "kafka_jobs.reports"
# The latest pause/resume command of each queue, keyed by the queue name.
COMMANDS_TOPIC = "kafka_jobs.commands"
# Compacted: only the latest record per key matters. The reader still bounds what it reads, because
# compaction runs late (or, on some development brokers, never).
OPS_TOPIC_CONFIG = {"cleanup.policy": "compact"}


def reports_topic(settings: KafkaJobsSettings) -> str:
    """Return the name of the reports topic (with the queue prefix)."""
    return settings.queue_prefix + REPORTS_TOPIC


def commands_topic(settings: KafkaJobsSettings) -> str:
    """Return the name of the commands topic (with the queue prefix)."""
    return settings.queue_prefix + COMMANDS_TOPIC
