"""``python -m bench [--quick] [--only SECTION ...]``: run the benchmark and write bench/results/<time>.json."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECTIONS = ("enqueue", "processing", "gap", "latency", "memory", "delays", "processes", "outbox")
RESULTS = Path(__file__).resolve().parent / "results"


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute; default: a few)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--output", type=Path, help="result file (default: bench/results/<timestamp>.json)")
    parser.add_argument("--keep", action="store_true", help="keep worker logs (printed path) after the run")
    parser.add_argument(
        "--processes",
        type=_at_least_one,
        default=2,
        metavar="N",
        help="worker processes the processes section compares with one (default 2; 1 measures one process only)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the processing workers with py-spy (pip install py-spy)"
    )
    return parser.parse_args(argv)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=RESULTS.parent.parent, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except OSError:
        return ""


def _meta(options: argparse.Namespace, sizes: Any, broker: str) -> dict[str, Any]:
    import confluent_kafka
    import django

    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "quick": options.quick,
        "sizes": sizes.__dict__,
        "broker": broker,
        "commit": _git("rev-parse", "HEAD"),
        "dirty_files": _git("status", "--porcelain", "--", "kafka_jobs").splitlines(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "confluent_kafka": confluent_kafka.version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    """Start (or reach) the broker, run the sections in order, print and write the results."""
    options = _arguments(argv)
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    if not external:
        from kafka_jobs.devbroker import DevBroker

        broker = DevBroker().start()
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        os.environ["BENCH_TANSU"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    workdir = Path(tempfile.mkdtemp(prefix="kafka-jobs-bench-"))
    keep = options.keep
    try:
        import django

        django.setup()
        return _run(options, workdir, external or "embedded Tansu (kafka_jobs.devbroker)")
    except BaseException:
        keep = True  # the worker logs explain the failure
        raise
    finally:
        if broker is not None:
            broker.stop()
        if keep:
            print(f"Worker logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(options: argparse.Namespace, workdir: Path, broker: str) -> int:
    from . import delays, enqueue, gap, latency, memory, outbox, processes, processing, profile
    from .env import Bench
    from .report import Report
    from .sizes import QUICK, Sizes

    sizes = dataclasses.replace(QUICK if options.quick else Sizes(), processes=options.processes)
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    report = Report(_meta(options, sizes, broker))
    profile_dir = None
    if options.profile:
        if profile.py_spy() is None:
            print("--profile: py-spy is not installed (pip install py-spy); running without it", file=sys.stderr)
        else:
            profile_dir = RESULTS
            RESULTS.mkdir(parents=True, exist_ok=True)
    bench = Bench(os.environ["KAFKA_BOOTSTRAP_SERVERS"], workdir, run_id=run_id, profile_dir=profile_dir)
    runners: dict[str, Callable[..., None]] = {
        "enqueue": enqueue.run,
        "processing": processing.run,
        "gap": gap.run,
        "latency": latency.run,
        "memory": memory.run,
        "delays": delays.run,
        "processes": processes.run,
        "outbox": outbox.run,
    }
    try:
        for name in SECTIONS:
            if name in options.only:
                started = time.monotonic()
                runners[name](bench, sizes, report)
                report.timings[name] = time.monotonic() - started
    finally:
        bench.close()
        report.meta["load_average_at_end"] = os.getloadavg()
        path = options.output or RESULTS / f"{run_id}.json"
        report.write(path)
        print(f"\n{report.summary()}\nResults written to {path}")
    return 0  # a missed target is a finding, not a failure: the summary lists it


if __name__ == "__main__":
    sys.exit(main())
