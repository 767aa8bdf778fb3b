"""Enqueue jobs through the outbox (or not) in one transaction, say so, then wait to be SIGKILLed.

``python -m tests.outbox_enqueue ALIAS LOG COUNT OUTBOX``: the crash test runs it as the enqueuing process.
"""

from __future__ import annotations

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.db import transaction  # noqa: E402

from tests.jobs import RecordJob  # noqa: E402


def main() -> None:
    alias, log, count, outbox = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    with transaction.atomic(using=alias):
        for n in range(count):
            # On another database than default, after-commit dispatch would not wait for this transaction.
            RecordJob.set(outbox=alias if outbox else False).perform_later(log, n)
    print("committed", flush=True)
    sys.stdin.read()  # until killed


if __name__ == "__main__":
    main()
