"""Kafka topic administration for routes: find missing topics, create them (idempotently)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from .conf import KafkaJobsSettings, client_config
from .exceptions import BrokerUnavailable, ConfigurationError
from .routing import Route

ADMIN_TIMEOUT = 10.0


def admin_client(settings: KafkaJobsSettings) -> AdminClient:
    """Return an admin client for the configured cluster (with the producer's security settings)."""
    extra = {k: v for k, v in settings.producer.items() if k.startswith(("security.", "sasl.", "ssl."))}
    return AdminClient({**client_config(settings), **extra})


def existing_topics(settings: KafkaJobsSettings, timeout: float = ADMIN_TIMEOUT) -> dict[str, int]:
    """Return topic name -> partition count; raise ``BrokerUnavailable`` if the cluster is not reachable."""
    try:
        metadata = admin_client(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"Could not reach Kafka at {settings.bootstrap_servers!r} within {timeout:.0f}s ({exc}). Check "
            "KAFKA_JOBS['BOOTSTRAP_SERVERS'] and that the broker is running."
        ) from exc
    return {name: len(topic.partitions) for name, topic in metadata.topics.items() if not topic.error}


def topics_of(routes: Iterable[Route]) -> dict[str, tuple[int, int, dict[str, str]]]:
    """Return every topic the routes need (job topics and DLQ topics) with partitions, replication, config."""
    needed: dict[str, tuple[int, int, dict[str, str]]] = {}
    for route in routes:
        needed[route.topic] = (route.partitions, route.replication_factor, dict(route.config))
        if route.dead_letter_queue is not None:
            needed.setdefault(route.dead_letter_queue.topic, (1, route.replication_factor, {}))
    return needed


def missing_topics(settings: KafkaJobsSettings, routes: Iterable[Route]) -> list[str]:
    """Return the routed topics that do not exist."""
    existing = existing_topics(settings)
    return [topic for topic in topics_of(routes) if topic not in existing]


def create_topics(settings: KafkaJobsSettings, routes: Iterable[Route]) -> list[str]:
    """Create the routed topics that do not exist yet; return the names created."""
    needed = topics_of(routes)
    existing = existing_topics(settings)
    new = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication, config=config)
        for name, (partitions, replication, config) in needed.items()
        if name not in existing
    ]
    if not new:
        return []
    created = []
    admin = admin_client(settings)  # keep a reference: futures fail if the client is collected
    for name, future in admin.create_topics(new, request_timeout=ADMIN_TIMEOUT).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise ConfigurationError(f"Could not create topic {name!r}: {exc}") from exc
    return created
