"""``--profile``: sample worker subprocesses with py-spy (if installed) and summarise where time goes.

py-spy pauses the worker for each sample (100 per second): profiled rates are a few per cent lower.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

RATE = 100  # samples per second
LIBRARY = "kafka_jobs/"


def py_spy() -> str | None:
    """Return the py-spy executable (next to this Python first), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def attach(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` until it exits, writing collapsed stacks to ``output``."""
    executable = py_spy()
    if executable is None:
        return None
    command = [executable, "record", "--threads", "-r", str(RATE), "-f", "raw"]
    return subprocess.Popen(
        [*command, "-o", str(output), "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def hot_spots(path: Path, limit: int = 15) -> list[tuple[str, float]]:
    """Return where busy samples go: the deepest kafka_jobs frame and what it called, by share of samples."""
    spots: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        frames = stack.split(";")
        deepest = max((i for i, frame in enumerate(frames) if LIBRARY in frame), default=None)
        if deepest is None:
            spots["(outside kafka_jobs)"] += int(count)
            continue
        callee = frames[deepest + 1] if deepest + 1 < len(frames) else "(self)"
        spots[f"{frames[deepest]} -> {callee}"] += int(count)
    return [(spot, samples / total) for spot, samples in spots.most_common(limit)] if total else []
