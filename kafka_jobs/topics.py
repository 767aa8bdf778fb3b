"""Kafka topic administration for routes: find missing topics, create them (idempotently).

A route needs its job topic and, with a dead letter queue, the DLQ topic and its replay ledger. A DLQ
topic must hold any message its source topic holds plus the ``kj-dlq-*`` headers, so it is created with
``max.message.bytes`` = the source's limit + ``DLQ_HEADROOM``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from .conf import KafkaJobsSettings, client_config
from .deadletter.ledger import LEDGER_TOPIC_CONFIG, ledger_topic
from .exceptions import BrokerUnavailable, ConfigurationError
from .routing import Route
from .validators import int_at_least_rule, is_int_at_least

ADMIN_TIMEOUT = 10.0
# Apache Kafka's default message.max.bytes (broker) and max.message.bytes (topic): a record batch's size.
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# librdkafka's default message.max.bytes (producer) and its maximum.
CLIENT_DEFAULT_MESSAGE_MAX_BYTES = 1_000_000
CLIENT_MAX_MESSAGE_MAX_BYTES = 1_000_000_000
# What a dead letter may add to its original: the kj-dlq-* headers are bounded well below this (about 31 kB
# at most, see deadletter.text), the rest is record framing.
DLQ_HEADROOM = 64 * 1024


def _bytes_setting(value: object, where: str) -> int:
    """Read a size in bytes from a Kafka config value (a string, or an int in a Python dict)."""
    try:
        number = int(value) if isinstance(value, int) and not isinstance(value, bool) else int(str(value))
    except ValueError:
        number = None
    if not is_int_at_least(number, 1):
        raise ConfigurationError(f"{where} must be a number of bytes, {int_at_least_rule(1)}, got {value!r}.")
    return number


def source_message_limit(route: Route) -> int:
    """Return the largest message ``route``'s topic holds: its ``max.message.bytes`` config, else Kafka's default.

    A cluster whose brokers allow larger messages by default should say so in the route's config, so its
    dead letter topic and the worker's dead letter producer follow.
    """
    value = route.config.get("max.message.bytes")
    if value is None:
        return KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    return _bytes_setting(value, f"active_job_topic({route.queue!r}) config['max.message.bytes']")


def dead_letter_producer_limit(settings: KafkaJobsSettings, routes: Iterable[Route]) -> int:
    """Return ``message.max.bytes`` for the producer that writes dead letters.

    The largest message the project's producers write (``PRODUCER['message.max.bytes']``, else Kafka's
    default topic limit) or a route with a dead letter queue declares (``max.message.bytes`` in its
    config), plus ``DLQ_HEADROOM`` for the ``kj-dlq-*`` headers. A message larger than that (written by
    some other producer) is dead-lettered as a stub.
    """
    configured = settings.producer.get("message.max.bytes")
    base = (
        KAFKA_DEFAULT_MAX_MESSAGE_BYTES
        if configured is None
        else _bytes_setting(configured, "KAFKA_JOBS['PRODUCER']['message.max.bytes']")
    )
    declared = [
        source_message_limit(r) for r in routes if r.dead_letter_queue is not None and "max.message.bytes" in r.config
    ]
    return min(max([base, *declared]) + DLQ_HEADROOM, CLIENT_MAX_MESSAGE_MAX_BYTES)


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
    """Return every topic the routes need (job topics, DLQ topics and their replay ledgers) with partitions,
    replication and config.

    A DLQ topic shared by several routes holds the largest message any of them holds.
    """
    needed: dict[str, tuple[int, int, dict[str, str]]] = {}
    dlq_limits: dict[str, int] = {}
    for route in routes:
        needed[route.topic] = (route.partitions, route.replication_factor, dict(route.config))
        dlq = route.dead_letter_queue
        if dlq is not None:
            dlq_limits[dlq.topic] = max(dlq_limits.get(dlq.topic, 0), source_message_limit(route) + DLQ_HEADROOM)
            needed.setdefault(dlq.topic, (1, route.replication_factor, {}))
            needed.setdefault(ledger_topic(dlq.topic), (1, route.replication_factor, dict(LEDGER_TOPIC_CONFIG)))
    for topic, limit in dlq_limits.items():
        partitions, replication, _ = needed[topic]
        needed[topic] = (partitions, replication, {"max.message.bytes": str(limit)})
    return needed


def missing_topics(settings: KafkaJobsSettings, routes: Iterable[Route]) -> list[str]:
    """Return the routed topics a worker needs that do not exist (replay ledgers are made when first used)."""
    routes = list(routes)
    ledgers = {ledger_topic(r.dead_letter_queue.topic) for r in routes if r.dead_letter_queue is not None}
    existing = existing_topics(settings)
    return [topic for topic in topics_of(routes) if topic not in existing and topic not in ledgers]


def create_topics(settings: KafkaJobsSettings, routes: Iterable[Route]) -> list[str]:
    """Create the routed topics that do not exist yet; return the names created."""
    return create_missing(settings, topics_of(routes))


def create_missing(settings: KafkaJobsSettings, needed: dict[str, tuple[int, int, dict[str, str]]]) -> list[str]:
    """Create the topics of ``needed`` (name -> partitions, replication, config) that do not exist yet."""
    existing = existing_topics(settings)
    return _create(settings, {name: spec for name, spec in needed.items() if name not in existing})


def create_topic(
    settings: KafkaJobsSettings, name: str, *, partitions: int, config: Mapping[str, str], replication: int = -1
) -> None:
    """Create one topic unless it exists (e.g. the replay ledger of a DLQ created by an older release).

    ``replication`` -1 takes the cluster's ``default.replication.factor`` (Kafka 2.4+).
    """
    _create(settings, {name: (partitions, replication, dict(config))})


def _create(settings: KafkaJobsSettings, specs: dict[str, tuple[int, int, dict[str, str]]]) -> list[str]:
    new = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication, config=config)
        for name, (partitions, replication, config) in specs.items()
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
