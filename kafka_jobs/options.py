"""Per-job-class options, validated when the class is defined and inherited copy-on-write."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidJob
from .validators import QUEUE_NAME_RULE, is_queue_name

if TYPE_CHECKING:
    from .job import Job

DISPATCH_METHODS = ("produce_async", "produce_sync")
DISPATCH_MANY_METHODS = ("produce_many_async", "produce_many_sync")
PARTITION_KEY_TYPES = ("key", "partition")


@dataclasses.dataclass(frozen=True)
class KafkaOptions:
    """How a job class is dispatched to Kafka (``Job.kafka_options`` after validation and inheritance)."""

    dispatch_method: str = "produce_async"
    dispatch_many_method: str = "produce_many_async"
    partitioner: Callable[[Job], Any] | None = None
    partition_key_type: str = "key"
    # Write this class's jobs to the transactional outbox (None: KAFKA_JOBS['OUTBOX']).
    outbox: bool | None = None

    def merged(self, declared: Any, owner: str) -> KafkaOptions:
        """Return a copy with ``declared`` applied; raise ``InvalidJob`` naming ``owner`` on a bad option."""
        if not isinstance(declared, Mapping):
            raise InvalidJob(f"{owner}.kafka_options must be a dict, got {type(declared).__name__}.")
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(declared) - fields
        if unknown:
            raise InvalidJob(
                f"{owner}.kafka_options has unknown option(s) {sorted(unknown)}; valid options: {sorted(fields)}."
            )
        _check_choice(owner, "dispatch_method", declared.get("dispatch_method"), DISPATCH_METHODS)
        _check_choice(owner, "dispatch_many_method", declared.get("dispatch_many_method"), DISPATCH_MANY_METHODS)
        _check_choice(owner, "partition_key_type", declared.get("partition_key_type"), PARTITION_KEY_TYPES)
        outbox = declared.get("outbox")
        if not (outbox is None or isinstance(outbox, bool)):
            raise InvalidJob(f"{owner}.kafka_options['outbox'] must be True, False or None, got {outbox!r}.")
        partitioner = declared.get("partitioner")
        if partitioner is not None and not callable(partitioner):
            raise InvalidJob(
                f"{owner}.kafka_options['partitioner'] must be a callable taking the job and returning a key, "
                f"got {partitioner!r}."
            )
        return dataclasses.replace(self, **declared)


def _check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InvalidJob(
            f"{owner}.kafka_options[{name!r}] is {value!r}; choose one of {', '.join(map(repr, choices))}."
        )


def validate_queue_name(owner: str, queue: Any) -> str:
    """Return ``queue`` if it can name a Kafka topic, else raise ``InvalidJob``."""
    if not is_queue_name(queue):
        raise InvalidJob(
            f"{owner} queue {queue!r} is not a valid queue name: use {QUEUE_NAME_RULE} (the queue name is the "
            "Kafka topic)."
        )
    return queue
