"""``python -m tests.integration.slow_stop_worker [runkafkaworker options]``: a worker whose stop request is slow.

While ``Shutdown.request()`` holds its lock it writes the file named by KAFKA_JOBS_TEST_IN_REQUEST and
stays there for a few seconds, so a test can deliver a signal exactly inside it (issue 7, item 10).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import django

IN_REQUEST_SECONDS = 3.0


def main(argv: list[str]) -> None:
    """Slow down the "Stopping: ..." log line of ``request()``, then run ``runkafkaworker`` with ``argv``."""
    django.setup()
    from django.core.management import call_command

    from kafka_jobs.worker import shutdown

    marker = Path(os.environ["KAFKA_JOBS_TEST_IN_REQUEST"])
    info = shutdown.logger.info

    def slow_info(message: str, *args: Any, **kwargs: Any) -> None:
        info(message, *args, **kwargs)
        if message.startswith("Stopping"):
            marker.write_text(str(os.getpid()))
            time.sleep(IN_REQUEST_SECONDS)  # the window a test signals into, not synchronisation

    shutdown.logger.info = slow_info  # type: ignore[method-assign]
    call_command("runkafkaworker", *argv)


if __name__ == "__main__":
    main(sys.argv[1:])
