"""Which topics the routes need and how they are configured: a dead letter topic holds whatever its source
holds plus the dead letter headers, its replay ledger is kept forever, and the dead letter producer may
write what the dead letter topics hold."""

from __future__ import annotations

import dataclasses

import pytest

from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import ConfigurationError
from kafka_jobs.routing import active_job_topic
from kafka_jobs.topics import (
    DLQ_HEADROOM,
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    dead_letter_producer_limit,
    topics_of,
)

PLAIN = active_job_topic("plain", partitions=3)
BILLING = active_job_topic("billing", partitions=2, dead_letter_queue={"topic": "billing.dead"})
LARGE = active_job_topic(
    "large", config={"max.message.bytes": "5000000"}, dead_letter_queue={"topic": "shared.dead", "max_retries": 0}
)
SMALL = active_job_topic("small", dead_letter_queue={"topic": "shared.dead"})


def test_a_dead_letter_topic_holds_what_its_source_holds_plus_the_headroom_and_has_a_ledger() -> None:
    topics = topics_of([PLAIN, BILLING])

    assert topics["plain"] == (3, 1, {})
    assert topics["billing"] == (2, 1, {})
    assert topics["billing.dead"] == (1, 1, {"max.message.bytes": str(KAFKA_DEFAULT_MAX_MESSAGE_BYTES + DLQ_HEADROOM)})
    partitions, _, config = topics["billing.dead.replays"]
    assert partitions == 1 and config["retention.ms"] == "-1" and config["retention.bytes"] == "-1"
    assert set(topics) == {"plain", "billing", "billing.dead", "billing.dead.replays"}


def test_a_dead_letter_topic_shared_by_routes_holds_the_largest_message_of_any() -> None:
    for routes in ([LARGE, SMALL], [SMALL, LARGE]):
        assert topics_of(routes)["shared.dead"][2] == {"max.message.bytes": str(5_000_000 + DLQ_HEADROOM)}


def test_the_dead_letter_producer_may_write_what_the_project_writes_plus_the_headroom() -> None:
    settings = get_settings()
    lowered = dataclasses.replace(settings, producer={"message.max.bytes": 200_000})

    assert dead_letter_producer_limit(settings, [PLAIN, BILLING]) == KAFKA_DEFAULT_MAX_MESSAGE_BYTES + DLQ_HEADROOM
    assert dead_letter_producer_limit(settings, [BILLING, LARGE]) == 5_000_000 + DLQ_HEADROOM
    assert dead_letter_producer_limit(lowered, [BILLING]) == 200_000 + DLQ_HEADROOM
    assert dead_letter_producer_limit(lowered, [LARGE]) == 5_000_000 + DLQ_HEADROOM


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_malformed_size_is_a_configuration_error_naming_the_key(value: str) -> None:
    route = active_job_topic("odd", config={"max.message.bytes": value}, dead_letter_queue={"topic": "odd.dead"})
    settings = dataclasses.replace(get_settings(), producer={"message.max.bytes": value})

    with pytest.raises(ConfigurationError, match=r"active_job_topic\('odd'\) config\['max.message.bytes'\]"):
        topics_of([route])
    with pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['PRODUCER'\]\['message.max.bytes'\]"):
        dead_letter_producer_limit(settings, [])
