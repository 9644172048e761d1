"""``make bench``: every benchmark, then a summary of the ratios against the bare Flask floor.

In-process first (``bench/ingest.py``), then HTTP under gunicorn (``bench/throughput.py``), then the
event-to-reply latency of the durable inbox at a steady rate (``bench/latency.py``). The
figures are printed, never asserted: a benchmark informs, tests decide. Takes about two minutes.

Usage: ``.venv/bin/python bench/run.py [--loadgen wrk|python] [--rounds 5] [--seconds 2] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository, not bench/, is the import root

from bench import ingest, latency, throughput  # noqa: E402 (needs the line above)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmarks: ratios against a bare Flask endpoint.")
    parser.add_argument("--loadgen", choices=("wrk", "python"), help="HTTP load generator (default: wrk if installed)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of loads under gunicorn")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed load per app and round under gunicorn")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter loads, for a smoke run")
    return parser.parse_args()


def main() -> int:
    """Run both benchmarks and print their tables and a summary; 0 unless something broke."""
    args = options()
    sys.stdout.reconfigure(line_buffering=True)  # each section as soon as it is done, also through a pipe
    started = time.monotonic()
    print(f"{machine()}\n")
    print("== in-process: one signed delivery through app.test_client() and a bare WSGI call ==")
    rows = ingest.run(rounds=5) if args.quick else ingest.run()
    print(ingest.table(rows))
    print()
    print("== HTTP throughput under gunicorn ==")
    rounds, seconds = (1, 1.0) if args.quick else (args.rounds, args.seconds)
    result = throughput.run(rounds=rounds, seconds=seconds, loadgen=args.loadgen)
    print(throughput.report(result))
    print()
    print("== event-to-reply latency at a steady 100 events/s, durable inbox, under gunicorn ==")
    latencies = latency.run(seconds=3.0 if args.quick else 10.0)
    print("\n".join(row.line() for row in latencies))
    print()
    print(summary(rows, result, ingest.TARGET))
    print(f"(took {time.monotonic() - started:.0f} s; {machine()})")
    return 0


def machine() -> str:
    """CPUs and load average: on a busy machine every figure is noisier, ratios less so than rates."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def summary(rows: list[ingest.Row], result: throughput.Result, target: float) -> str:
    """The ratios that matter, one line each, the one the target is about first; the cached preview
    answer is read against its own target under both harnesses."""
    first = next(row for row in rows if row.harness == "test client" and row.case == "1 message")
    entries = []
    for row in [first, *(row for row in rows if row is not first)]:
        applies = target if row is first else ingest.PREVIEW_TARGET if row.case == ingest.PREVIEW_CASE else None
        entries.append((f"in-process, {row.harness}, {row.case}", f"{row.ratio:.2f}x  (hand-written HMAC receiver "
                        f"{row.peer_ratio:.2f}x{verdict(row.ratio, applies)})"))
    entries += [(f"in-process, {row.harness}, {row.case}, durable inbox", f"{row.durable_ratio:.2f}x"
                 f"{verdict(row.durable_ratio, target if row.harness == first.harness else None)}")
                for row in rows if row.case != ingest.PREVIEW_CASE]
    for run in result.runs[1:]:
        share = run.load.rate / result.floor.rate
        durable = run.app in ("ingest, durable", throughput.CELERY_APP, throughput.CELERY_BACKLOG_APP)
        goal = f"; {'within' if share >= 0.9 else 'UNDER'} the 0.9 target" if durable else ""
        entries.append((f"HTTP, gunicorn, {run.app}", f"{1 / share:.2f}x  ({run.load.rate:.0f} vs "
                        f"{result.floor.rate:.0f} accepted/s: throughput {share:.2f} of the floor's{goal})"))
    width = max(len(label) for label, _ in entries) + 2
    lines = ["== summary: cost per request / the bare Flask floor's, measured in the same run =="]
    return "\n".join(lines + [f"{label + ':':<{width}}{text}" for label, text in entries])


def verdict(ratio: float, target: float | None) -> str:
    """``; within the 1.5x target`` (or ``OVER``) when a target applies to the figure, else nothing."""
    if target is None:
        return ""
    return f"; {'within' if ratio <= target else 'OVER'} the {target}x target"


if __name__ == "__main__":
    sys.exit(main())
