"""The topics kafka_jobs itself uses beside the routed ones: delay tiers, schedules, worker reports, commands.

``kafkatopics create`` and ``runkafkaworker --create-topics`` create them with the routed topics; the
worker refuses to start while one is missing.
"""

from __future__ import annotations

from .conf import KafkaJobsSettings
from .delays.tiers import DelayLadder
from .ops.topics import OPS_TOPIC_CONFIG, commands_topic, reports_topic
from .topics import create_missing, existing_topics

TopicSpecs = dict[str, tuple[int, int, dict[str, str]]]

# The schedule topic: the last fire of each recurring schedule, keyed by its name (compacted).
SCHEDULE_TOPIC = "kafka_jobs.schedules"
# A tier topic keeps its messages at least a week, and at least twice its delay: a forwarder stopped for
# less than that loses nothing (the broker's default retention could be shorter).
MIN_TIER_RETENTION_MS = 7 * 86_400_000


def schedule_topic(settings: KafkaJobsSettings) -> str:
    """Return the name of the schedule topic (with the queue prefix)."""
    return settings.queue_prefix + SCHEDULE_TOPIC


def internal_topics(settings: KafkaJobsSettings, *, recurring: bool) -> TopicSpecs:
    """Return the delay tier, reports and commands topics, and the schedule topic if ``recurring`` jobs are declared."""
    replication = settings.internal_replication_factor
    needed: TopicSpecs = {}
    for tier in DelayLadder(settings.delay_tiers, settings.queue_prefix):
        retention = max(MIN_TIER_RETENTION_MS, 2 * tier.delay_ms)
        needed[tier.topic] = (settings.delay_partitions, replication, {"retention.ms": str(retention)})
    needed[reports_topic(settings)] = (1, replication, dict(OPS_TOPIC_CONFIG))
    needed[commands_topic(settings)] = (1, replication, dict(OPS_TOPIC_CONFIG))
    if recurring:
        needed[schedule_topic(settings)] = (1, replication, {"cleanup.policy": "compact"})
    return needed


def missing_internal_topics(settings: KafkaJobsSettings, *, recurring: bool) -> list[str]:
    """Return the internal topics that do not exist."""
    existing = existing_topics(settings)
    return [name for name in internal_topics(settings, recurring=recurring) if name not in existing]


def create_internal_topics(settings: KafkaJobsSettings, *, recurring: bool) -> list[str]:
    """Create the internal topics that do not exist yet; return the names created."""
    return create_missing(settings, internal_topics(settings, recurring=recurring))
