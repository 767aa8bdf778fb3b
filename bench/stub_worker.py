"""``python -m bench.stub_worker [runkafkaworker options]``: the worker with a stub executor.

The executor only runs ``json.loads`` and the probe's no-op, as the raw baseline does, so this worker's
rate is what the listener (poll loop, lanes, thread hand-off, commits) costs on its own.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import django


def main(argv: list[str]) -> None:
    """Patch the executor, then run ``runkafkaworker`` with ``argv``."""
    django.setup()
    from django.core.management import call_command

    from kafka_jobs.worker import executor

    from .probe import PROBE

    done = executor.Outcome(executor.Verdict.DONE)

    def process(
        self: executor.Executor, message: Any, route: Any, failures: int, owned: Any, *, envelope: Any = None
    ) -> executor.Outcome:
        json.loads(message.value())
        PROBE.tick()
        return done

    executor.Executor.process = process  # type: ignore[method-assign]
    call_command("runkafkaworker", *argv)


if __name__ == "__main__":
    main(sys.argv[1:])
