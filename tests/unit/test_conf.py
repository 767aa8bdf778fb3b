"""Settings: defaults, validation naming the bad key, rebuilt by override_settings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from kafka_jobs import backends, routing
from kafka_jobs.conf import (
    BACKENDS,
    BACKOFF_SETTING_KEYS,
    RESERVED_CONSUMER_KEYS,
    Backoff,
    KafkaJobsSettings,
    build_settings,
    client_config,
    get_settings,
)
from kafka_jobs.exceptions import ConfigurationError


def test_empty_settings_give_the_documented_defaults() -> None:
    settings = build_settings("kafka", {})

    assert settings == KafkaJobsSettings(backend="kafka")
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.routes == "kafka_routes"
    assert settings.queue_prefix == ""
    assert settings.backoff == Backoff(initial=1.0, maximum=30.0, exponential=True)
    assert settings.enqueue_after_commit is True
    assert settings.require_route is True
    assert settings.serializer == "kafka_jobs.serializer.JsonSerializer"


def test_without_job_backend_the_async_backend_is_used() -> None:
    from django.conf import settings

    # Not pytest-django's settings fixture: it restores a deleted setting without sending setting_changed.
    with override_settings(JOB_BACKEND="inline"):
        del settings.JOB_BACKEND
        assert get_settings().backend == "async"
    assert KafkaJobsSettings().backend == "async"


def test_client_config_names_the_cluster_and_client_and_logs_through_python_logging() -> None:
    config = client_config(build_settings("kafka", {"BOOTSTRAP_SERVERS": "b:1", "CLIENT_ID": "shop"}))

    assert (config["bootstrap.servers"], config["client.id"]) == ("b:1", "shop")
    assert config["logger"].name == "kafka_jobs.librdkafka"


def test_keys_are_lower_cased_into_fields() -> None:
    settings = build_settings(
        "test",
        {
            "BOOTSTRAP_SERVERS": "broker:9093",
            "QUEUE_PREFIX": "staging.",
            "CONCURRENCY": 3,
            "COMMIT_INTERVAL": 0.5,
            "CONSUMER": {"session.timeout.ms": 6000},
            "BACKOFF": {"INITIAL": 0.5, "MAX": 4, "EXPONENTIAL": False},
        },
    )

    assert settings.backend == "test"
    assert settings.bootstrap_servers == "broker:9093"
    assert settings.queue_prefix == "staging."
    assert settings.concurrency == 3
    assert settings.commit_interval == 0.5
    assert settings.consumer == {"session.timeout.ms": 6000}
    assert settings.backoff == Backoff(initial=0.5, maximum=4, exponential=False)


def test_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="CONCURENCY"):
        build_settings("kafka", {"CONCURENCY": 2})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BOOTSTRAP_SERVERS", 9092),
        ("ROUTES", None),
        ("PRODUCER", [("acks", "all")]),
        ("DELIVERY_TIMEOUT", "30"),
        ("CONCURRENCY", 2.5),
        ("ENQUEUE_AFTER_COMMIT", "yes"),
        ("REQUIRE_ROUTE", 1),
        ("BACKOFF", 1.0),
    ],
)
def test_wrong_type_is_an_error_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"KAFKA_JOBS\['{key}'\]"):
        build_settings("kafka", {key: value})


@pytest.mark.parametrize("key", ["CONCURRENCY", "MAX_BUFFERED_MESSAGES", "ASYNC_THREADS", "DELIVERY_TIMEOUT"])
def test_bool_is_not_accepted_for_a_number(key: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"KAFKA_JOBS\['{key}'\].*bool"):
        build_settings("kafka", {key: True})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("CONCURRENCY", 0, "an int >= 1"),
        ("MAX_BUFFERED_MESSAGES", -1, "an int >= 1"),
        ("ASYNC_THREADS", 0, "an int >= 1"),
        ("DELIVERY_TIMEOUT", 0, "a number of seconds > 0"),
        ("SHUTDOWN_TIMEOUT", -1.0, "a number of seconds > 0"),
        ("REVOKE_TIMEOUT", 0.0, "a number of seconds > 0"),
        ("COMMIT_INTERVAL", -0.5, "a number of seconds >= 0"),
        ("COMMIT_INTERVAL", float("inf"), "a number of seconds >= 0"),
        ("DELIVERY_TIMEOUT", float("nan"), "a number of seconds > 0"),
    ],
)
def test_out_of_range_number_is_an_error_naming_the_key(key: str, value: float, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"KAFKA_JOBS\['{key}'\] must be {expected}, got"):
        build_settings("kafka", {key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("CONCURRENCY", 1), ("MAX_BUFFERED_MESSAGES", 1), ("ASYNC_THREADS", 1), ("COMMIT_INTERVAL", 0)],
)
def test_smallest_allowed_number_is_accepted(key: str, value: float) -> None:
    assert getattr(build_settings("kafka", {key: value}), key.lower()) == value


def test_every_settings_field_has_a_key_and_a_rule() -> None:
    from kafka_jobs.conf import _RULES

    fields = {field.name for field in dataclasses.fields(KafkaJobsSettings)} - {"backend"}
    assert {key.lower() for key in _RULES} == fields


@pytest.mark.parametrize("key", RESERVED_CONSUMER_KEYS)
def test_consumer_keys_the_worker_manages_are_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"KAFKA_JOBS\['CONSUMER'\] sets '{key}'"):
        build_settings("kafka", {"CONSUMER": {key: "x"}})


@pytest.mark.parametrize("key", ["MAXIMUM", "maximum", "max"])
def test_unknown_backoff_key_is_an_error_naming_it_and_both_spellings(key: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"KAFKA_JOBS\['BACKOFF'\] has unknown keys \['{key}'\]") as info:
        build_settings("kafka", {"BACKOFF": {key: 3}})

    assert "'INITIAL', 'MAX', 'EXPONENTIAL'" in str(info.value)
    assert "'initial', 'maximum', 'exponential'" in str(info.value)


def test_backoff_setting_keys_map_onto_every_backoff_field() -> None:
    assert sorted(BACKOFF_SETTING_KEYS.values()) == sorted(field.name for field in dataclasses.fields(Backoff))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"MAX": 4}, Backoff(initial=1.0, maximum=4, exponential=True)),
        ({"INITIAL": 0.5}, Backoff(initial=0.5, maximum=30.0, exponential=True)),
        ({"EXPONENTIAL": False}, Backoff(initial=1.0, maximum=30.0, exponential=False)),
    ],
)
def test_backoff_keys_left_out_keep_the_backoff_defaults(raw: dict[str, Any], expected: Backoff) -> None:
    assert build_settings("kafka", {"BACKOFF": raw}).backoff == expected


def test_backoff_may_retry_at_once() -> None:
    assert Backoff(initial=0, maximum=0).delay(3) == 0.0


@pytest.mark.parametrize(("initial", "maximum"), [(True, 30.0), (1.0, float("inf")), (-1, 30.0)])
def test_backoff_refuses_a_bool_a_negative_or_an_infinite_number(initial: Any, maximum: Any) -> None:
    with pytest.raises(ConfigurationError, match="Backoff"):
        Backoff(initial=initial, maximum=maximum)


def test_backoff_maximum_below_initial_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['BACKOFF'\].*maximum"):
        build_settings("kafka", {"BACKOFF": {"INITIAL": 5, "MAX": 1}})


def test_backoff_exponential_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['BACKOFF'\].*exponential"):
        build_settings("kafka", {"BACKOFF": {"EXPONENTIAL": "no"}})


@pytest.mark.parametrize("prefix", ["staging/", "a b.", "ü."])
def test_queue_prefix_must_be_usable_in_a_topic_name(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['QUEUE_PREFIX'\]"):
        build_settings("kafka", {"QUEUE_PREFIX": prefix})


def test_empty_bootstrap_servers_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="BOOTSTRAP_SERVERS"):
        build_settings("kafka", {"BOOTSTRAP_SERVERS": "  "})


def test_unknown_backend_is_an_error_listing_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="JOB_BACKEND") as info:
        build_settings("celery", {})

    for choice in BACKENDS:
        assert repr(choice) in str(info.value)


def test_kafka_jobs_must_be_a_dict() -> None:
    with pytest.raises(ConfigurationError, match="KAFKA_JOBS must be a dict"):
        build_settings("kafka", ["BOOTSTRAP_SERVERS"])


def test_configuration_error_is_an_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured):
        build_settings("kafka", {"NOPE": 1})


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        (Backoff(1.0, 30.0, True), [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
        (Backoff(0.5, 10.0, False), [0.5] * 7),
    ],
)
def test_backoff_doubles_up_to_the_maximum_or_stays_constant(backoff: Backoff, delays: list[float]) -> None:
    assert [backoff.delay(n) for n in range(1, 8)] == delays


def test_override_settings_rebuilds_the_cached_settings() -> None:
    before = get_settings()
    assert get_settings() is before  # cached

    with override_settings(JOB_BACKEND="inline", KAFKA_JOBS={"QUEUE_PREFIX": "p.", "CONCURRENCY": 7}):
        inside = get_settings()
        assert inside.backend == "inline"
        assert inside.queue_prefix == "p."
        assert inside.concurrency == 7

    assert get_settings() == before


def test_invalid_override_raises_when_settings_are_read() -> None:
    with override_settings(KAFKA_JOBS={"CONCURRENCY": 0}), pytest.raises(ConfigurationError, match="CONCURRENCY"):
        get_settings()
    assert get_settings().concurrency > 0


def test_pytest_settings_fixture_also_rebuilds(settings: Any) -> None:
    assert get_settings().backend == "test"  # cached before the change: only the receiver can clear it

    settings.JOB_BACKEND = "async"

    assert get_settings().backend == "async"


def test_a_settings_change_rebuilds_the_backend_and_the_routes() -> None:
    backend, routes = backends.get_backend(), routing.get_routes()
    assert (backends.get_backend(), routing.get_routes()) == (backend, routes)  # cached until then

    with override_settings(KAFKA_JOBS={"ROUTES": "tests.kafka_routes", "QUEUE_PREFIX": "rebuilt."}):
        assert backends.get_backend() is not backend
        assert routing.get_routes().topic_for("single") == "rebuilt.single"


def test_other_settings_changes_keep_the_cached_settings() -> None:
    before = get_settings()

    with override_settings(USE_TZ=False):
        assert get_settings() is before
