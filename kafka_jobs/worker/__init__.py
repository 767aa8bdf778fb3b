"""The ``runkafkaworker`` engine.

``worker`` (the poll loop, start to stop) drives ``listener`` (fetching, pause/resume, rebalances) and
``committer`` (offset commits and retry counts) on the main thread, and ``jobthreads`` that run jobs through
``executor``. They share ``ledger`` (partitions, ready lanes, counters) under one lock; ``partition`` holds one
partition's lanes and commit point; ``consumer`` builds the Kafka consumer; ``shutdown`` handles signals.
"""

from .consumer import KafkaConsumerFactory, consumer_config
from .shutdown import ExitCode, Shutdown
from .worker import Worker

__all__ = ["ExitCode", "KafkaConsumerFactory", "Shutdown", "Worker", "consumer_config"]
