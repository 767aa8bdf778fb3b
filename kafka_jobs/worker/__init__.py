"""The ``runkafkaworker`` engine: listener (poll loop), executor (one job), shutdown (signals, exit codes)."""

from .listener import Worker
from .shutdown import ExitCode, Shutdown

__all__ = ["ExitCode", "Shutdown", "Worker"]
