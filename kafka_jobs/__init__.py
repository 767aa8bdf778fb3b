"""kafka_jobs: background jobs for Django over Apache Kafka."""

from .exceptions import (
    ArgumentLoadError,
    BrokerUnavailable,
    ConfigurationError,
    DecodeError,
    EncodeError,
    EnqueueError,
    InvalidJob,
    JobNotRegistered,
    KafkaJobsError,
    SerializationError,
    UnknownTask,
    UnroutedQueue,
    UnsupportedEnvelopeVersion,
)
from .job import ConfiguredJob, Job, MessageInfo, perform_all_later
from .retry import retry_on

__all__ = [
    "ArgumentLoadError",
    "BrokerUnavailable",
    "ConfigurationError",
    "ConfiguredJob",
    "DecodeError",
    "EncodeError",
    "EnqueueError",
    "InvalidJob",
    "Job",
    "JobNotRegistered",
    "KafkaJobsError",
    "MessageInfo",
    "SerializationError",
    "UnknownTask",
    "UnroutedQueue",
    "UnsupportedEnvelopeVersion",
    "perform_all_later",
    "retry_on",
]
