"""``make bench``: every benchmark, then a summary of each figure against its target.

Each figure is a ratio to a bare Flask endpoint (``bench/floor.py``) measured in the same run, next
to the hand-written HMAC receiver (``bench/peer_hmac.py``); every benchmark sends distinct signed
deliveries to the counting bench bot (``bench/counting_bot.py``), waits until every accepted one has
been handled, and checks that each ran exactly once:

1. in process (``bench/inprocess.py``): CPU per handled event, request path alone and whole path,
   on the SQLite and the in-memory inbox;
2. HTTP under gunicorn, sync workers, 1 and 2 (``bench/throughput.py``): events handled per second,
   request path and whole path, on SQLite, memory and (with ``BENCH_REDIS_URL``) Celery with 1 and 2
   worker processes;
3. event-to-reply latency at a steady 100 events/s (``bench/latency.py``).

The figures are printed, never asserted: a benchmark informs, tests decide. The exit status is
not 0 only when a section could not be measured at all. Takes about five minutes (``--quick``:
under one).

Usage: ``.venv/bin/python bench/run.py [--loadgen wrk|python] [--rounds 5] [--seconds 1] [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository, not bench/, is the import root

from bench import accounting, inprocess, latency, throughput  # noqa: E402 (needs the line above)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmarks: ratios against a bare Flask endpoint.")
    parser.add_argument("--loadgen", choices=("wrk", "python"), help="HTTP load generator (default: wrk if installed)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of loads under gunicorn")
    parser.add_argument("--seconds", type=float, default=1.0, help="a load under gunicorn lasts about this long on "
                        "the floor (slower apps take longer: same deliveries)")
    parser.add_argument("--quick", action="store_true", help="one short round of everything, for a smoke run")
    return parser.parse_args()


def main() -> int:
    """Run every benchmark, print its table and a summary; 0 unless a section could not be measured."""
    args = options()
    sys.stdout.reconfigure(line_buffering=True)  # each section as soon as it is done, also through a pipe
    started = time.monotonic()
    print(f"{machine()}\n")
    failed: list[str] = []

    print("== in process: CPU per handled event, WSGI call with prepared environs ==")
    local = section(failed, "in process", lambda: inprocess.run(rounds=2, count=300, warmup=100) if args.quick
                    else inprocess.run())
    if local is not None:
        print(inprocess.table(local))
    print()

    print("== HTTP under gunicorn, sync workers: events handled per second ==")
    rounds, seconds, warmup = (1, 0.25, 100) if args.quick else (args.rounds, args.seconds, 300)
    http = section(failed, "HTTP", lambda: throughput.run(rounds=rounds, seconds=seconds, warmup=warmup,
                                                          loadgen=args.loadgen))
    if http is not None:
        print(throughput.report(http))
    print()

    print("== event-to-reply latency at a steady 100 events/s, durable inbox, under gunicorn (Procfile) ==")
    latencies = section(failed, "latency", lambda: latency.run(seconds=2.0 if args.quick else 10.0,
                                                               warmup=0.5 if args.quick else 1.0))
    if latencies is not None:
        print("\n".join(row.line() for row in latencies))
    print()

    print(summary(local, http, latencies))
    for name in failed:
        print(f"NOT MEASURED: {name} (the error is printed in its section above)")
    print(f"(took {time.monotonic() - started:.0f} s; {machine()})")
    return 1 if failed else 0


def section(failed: list[str], name: str, measure):
    """Run one benchmark, then say how much CPU the machine's host took meanwhile; on an error print it and go
    on with the next section."""
    before = accounting.machine_times()
    try:
        return measure()
    except Exception as error:  # a broken engine must not hide the other sections' figures
        print(f"error: {name}: {type(error).__name__}: {error}")
        if not isinstance(error, (throughput.NotFinished, inprocess.NotFinished)):
            traceback.print_exc(limit=4, file=sys.stdout)
        failed.append(name)
        return None
    finally:
        steal = accounting.steal_share(before, accounting.machine_times())
        print(f"(steal over {name}: {steal:.1%} of the machine's CPU went to other guests of its host; "
              "figures measured while it is high spread more)")


def machine() -> str:
    """CPUs and load average: on a busy machine every figure is noisier, ratios less so than rates."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def summary(local: inprocess.Result | None, http: throughput.Result | None,
            latencies: list[latency.Latency] | None) -> str:
    """One line a figure: what it is, the figure, the HMAC receiver's for comparison, the target and
    whether the figure is within it."""
    entries: list[tuple[str, str, str]] = []  # label, figure, target and verdict
    if local is not None:
        for name, one in local.measured.items():
            if name == inprocess.FLOOR:
                continue
            target = inprocess.TARGETS.get(one.served.inbox) if one.served.whole else None
            ratio = one.ratio
            versus_peer = "" if name == inprocess.PEER else f", {one.cpu_us / local.peer_us:.2f}x the HMAC receiver's"
            entries.append((f"in process, {name}, CPU per event",
                            f"{ratio:.2f}x the floor's{versus_peer}  ({one.cpu_us:.0f} vs {local.floor_us:.0f} µs; "
                            f"pairs {one.ratios[0]:.2f}-{one.ratios[-1]:.2f})" if one.ratios else "not measured",
                            goal(ratio, target, at_most=True)))
    if http is not None:
        for (workers, name), one in http.measured.items():
            if name == throughput.FLOOR:
                continue
            label = f"HTTP w{workers}, {name}"
            if not one.valid:
                entries.append((label, "not measured", (one.problems or ["no load"])[0][:100]))
                continue
            floor, peer = http.floor(workers), http.peer(workers)
            pairs = f"; pairs {one.shares[0]:.2f}-{one.shares[-1]:.2f}" if one.shares else ""
            versus_peer = "" if name == throughput.PEER else f", {one.rate / peer.rate:.2f} of the HMAC receiver's"
            entries.append((label, f"{one.share:.2f} of the floor's rate{versus_peer}  ({one.rate:.0f} vs "
                                   f"{floor.rate:.0f}/s{pairs})", goal(one.share, one.target, at_most=False)))
        entries += [("HTTP, Celery", "not measured", note) for note in http.notes]
    if latencies is not None:
        reply = latencies[-1]
        entries.append(("latency at 100 events/s, webhook in -> reply at Graph",
                        f"p99 {reply.p99:.1f} ms  (p50 {reply.p50:.1f} ms; floor's round trip p99 "
                        f"{latencies[0].p99:.1f} ms{f'; {reply.lost} never arrived' if reply.lost else ''}"
                        f"{f'; {reply.slow}' if reply.slow else ''})",
                        goal(reply.p99, latency.TARGET_P99_MS, at_most=True, unit=" ms")))
    width = max((len(label) for label, _, _ in entries), default=0) + 2
    lines = ["== summary: each figure against the bare Flask floor measured in the same run, and its target ==",
             "(targets apply to the whole path; request-path rows show where the cost is)"]
    lines += [f"{label + ':':<{width}}{figure}{f'  [{verdict}]' if verdict else ''}" for label, figure, verdict
              in entries]
    return "\n".join(lines)


def goal(value: float, target: float | None, *, at_most: bool, unit: str = "x") -> str:
    """``target <= 1.6x: within`` (or OVER / UNDER) when a target applies to the figure, else nothing."""
    if target is None:
        return ""
    if math.isnan(value):
        return "not measured"
    if at_most:
        return f"target <= {target}{unit}: {'within' if value <= target else 'OVER'}"
    return f"target >= {target}: {'within' if value >= target else 'UNDER'}"


if __name__ == "__main__":
    sys.exit(main())
