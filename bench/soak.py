"""Soak: does the durable SQLite inbox stay flat over a long run at a steady rate?

The counting bench bot (``bench/counting_bot.py``, built by ``bench/wsgi_bench.py``) is served as
``bench/throughput.py`` serves its whole path: ``gunicorn --worker-class sync --workers 2``, the
default SQLite inbox with handler and sender threads in the workers, ``DATA_DIR`` in a temporary
folder. Distinct signed deliveries (a message id of their own each, 1,000 senders in turn) are sent
at a steady rate for ``--minutes``, open loop: a few client processes with a few threads each, every
thread sending its share on a fixed schedule (``start + n / rate``) whatever the answers take; a
thread that falls behind sends at once and the lag is counted. (Sync workers close the connection
after each answer, so a client's keep-alive connection is reopened for every request.)

Every 30 s one line: the minute, deliveries accepted (2xx) and handled (distinct accepted mids whose
handler ran, from the counting bot's run files), the backlog (accepted - handled) and what
``/healthz`` reports pending, send -> handler-run latency p50/p99/max of the deliveries handled in
the window (send time from the client, run time from the bot's run line; both ``time.time()``
on this machine), the store on disk (``bots.sqlite3`` + ``-wal`` + ``arrivals/*.log``) and the bytes
it grew by per delivery handled since the previous line, the rows of ``inbox_events`` and
``inbox_seen`` (dedupe digests), and the rate the clients actually sent at. Then, once every accepted
delivery has run and ``/healthz`` shows nothing pending, a summary: store growth per hour (a linear
fit of the samples), bytes per handled event kept, first- vs last-window p99, and whether every
accepted delivery ran exactly once.

Run alone: ``.venv/bin/python -m bench.soak [--minutes 10] [--rate 300] [--every 30]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import queue
import secrets
import sqlite3
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import accounting, throughput
from bench.payloads import COUNTER_PATH, PEOPLE, sender_id, signed
from bots.deliveries import Deliveries

APP = throughput.App("SQLite, whole path", "bench.wsgi_bench:app", {"INBOX": "sqlite"}, "sqlite", whole=True)
WORKERS = 2
CLIENT_PROCESSES, CLIENT_THREADS = 2, 4
LATE = 0.1  # a send this many seconds behind its schedule counts as late
FLUSH_EVERY = 0.25  # seconds between a client's reports to the harness
#: What README "Nothing accepted is lost" says a finished event leaves behind (its dedupe digest, 36 h).
README_BYTES_PER_EVENT = 60


# -- the clients ---------------------------------------------------------------------------------------


def mid_of(run: str, n: int) -> str:
    return f"m_soak_{run}_{n}"


def _client(url: str, run: str, process: int, rate: float, seconds: float, start: float,
            reports: multiprocessing.Queue) -> None:
    """One client process: ``CLIENT_THREADS`` threads, each sending deliveries ``n = slot, slot + S, ...``
    (``S`` slots in all) at ``start + n / rate``; reports ``(n, lag, sent, answered, status)`` in batches."""
    slots = CLIENT_PROCESSES * CLIENT_THREADS
    total = int(rate * seconds)
    lock, batch = threading.Lock(), []

    def flush() -> None:
        with lock:
            items, batch[:] = list(batch), []
        if items:
            reports.put(items)

    def thread(slot: int) -> None:
        build = Deliveries()
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        last_flush = time.monotonic()
        for n in range(slot, total, slots):
            delivery = signed(build.message("help", sender=sender_id(n % PEOPLE), mid=mid_of(run, n)),
                              path=COUNTER_PATH)
            due = start + n / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            sent = time.time()
            try:
                connection.request("POST", COUNTER_PATH, delivery.body, delivery.headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                connection.close()
                status = 0
            with lock:
                batch.append((n, sent - due, sent, time.time(), status))
            if time.monotonic() - last_flush > FLUSH_EVERY:
                flush()
                last_flush = time.monotonic()
        connection.close()

    threads = [threading.Thread(target=thread, args=(process * CLIENT_THREADS + t,)) for t in range(CLIENT_THREADS)]
    for one in threads:
        one.start()
    for one in threads:
        one.join()
    flush()
    reports.put(None)  # this process is done


# -- the samples ---------------------------------------------------------------------------------------


@dataclass
class Store:
    """Bytes on disk of the inbox: the database, its WAL, the arrivals logs."""

    db: int
    wal: int
    logs: int

    @property
    def total(self) -> int:
        return self.db + self.wal + self.logs

    @property
    def database(self) -> int:
        return self.db + self.wal


def store_size(data: Path) -> Store:
    def size(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0
    logs = sum(size(path) for path in (data / "arrivals").glob("*.log"))
    return Store(size(data / "bots.sqlite3"), size(data / "bots.sqlite3-wal"), logs)


def rows(data: Path) -> tuple[int, int]:
    """Rows of ``inbox_events`` (waiting or parked events) and ``inbox_seen`` (dedupe digests), read only."""
    try:
        db = sqlite3.connect(f"file:{data / 'bots.sqlite3'}?mode=ro", uri=True, timeout=5)
        try:
            events = db.execute("SELECT count(*) FROM inbox_events").fetchone()[0]
            seen = db.execute("SELECT count(*) FROM inbox_seen").fetchone()[0]
            return events, seen
        finally:
            db.close()
    except sqlite3.Error:
        return -1, -1


def pending(url: str) -> int:
    try:
        status, body = throughput.http_get(url, "/healthz", timeout=5)
        return int(json.loads(body)["pending"]) if status == 200 else -1
    except (OSError, ValueError, KeyError):
        return -1


def cuts(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in milliseconds (NaN when there are none)."""
    if not values:
        return math.nan, math.nan, math.nan
    ms = sorted(value * 1000 for value in values)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p99, ms[-1]


@dataclass
class Sample:
    at: float  # seconds since the load started
    accepted: int
    handled: int
    pending: int
    latency: tuple[float, float, float]
    store: Store
    events: int
    seen: int
    sent_rate: float
    late: int
    max_lag: float
    cpu: float  # share of one CPU the server tree used over the window
    per_event: float  # bytes the store grew by per delivery handled in the window
    per_event_db: float  # the same for bots.sqlite3 + -wal alone
    label: str = ""

    def line(self) -> str:
        p50, p99, worst = self.latency
        mb = self.store.total / 1e6
        return (f"{self.label or f'min {self.at / 60:5.1f}'}  accepted {self.accepted:7d}  handled {self.handled:7d}  "
                f"backlog {self.accepted - self.handled:5d} (pending {self.pending:4d})  "
                f"lat ms p50 {p50:6.1f} p99 {p99:7.1f} max {worst:7.1f}  "
                f"store {mb:6.1f} MB (db {self.store.db / 1e6:.1f} wal {self.store.wal / 1e6:.1f} "
                f"logs {self.store.logs / 1e6:.1f}) {self.per_event:+5.0f} B/ev (db+wal {self.per_event_db:+4.0f})  "
                f"rows events {self.events} seen {self.seen}  sent {self.sent_rate:5.1f}/s late {self.late} "
                f"(max {self.max_lag * 1000:.0f} ms)  server CPU {self.cpu:.0%}")


@dataclass
class Soak:
    """What the harness knows: send times of accepted deliveries, runs read so far, the window's figures."""

    run: str
    url: str
    data: Path
    runs: accounting.RunFiles
    roots: list[int]
    sent_at: dict[str, float] = field(default_factory=dict)  # accepted mid -> send time
    rejected: int = 0
    failed: int = 0
    handled: set[str] = field(default_factory=set)
    repeats: int = 0
    strays: int = 0  # runs of mids not accepted in this soak
    read: int = 0  # runs consumed from self.runs
    waiting: list[tuple[str, float]] = field(default_factory=list)  # runs whose send report has not come yet
    last_sent: float = 0.0  # wall-clock time of the latest send reported
    window: list[float] = field(default_factory=list)
    window_sent: int = 0
    window_late: int = 0
    window_lag: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    baseline: Store = field(default_factory=lambda: Store(0, 0, 0))  # the store before the first delivery

    def take(self, items: list[tuple[int, float, float, float, int]]) -> None:
        for n, lag, sent, _answered, status in items:
            self.window_sent += 1
            self.window_late += lag > LATE
            self.window_lag = max(self.window_lag, lag)
            self.last_sent = max(self.last_sent, sent)
            if 200 <= status < 300:
                self.sent_at[mid_of(self.run, n)] = sent
            elif status == 503:
                self.rejected += 1
            else:
                self.failed += 1

    def count_runs(self, final: bool = False) -> None:
        self.runs.poll()
        fresh = list(zip(self.runs.mids[self.read:], self.runs.times[self.read:], strict=True))
        self.read = len(self.runs.mids)
        later = []
        for mid, when in self.waiting + fresh:
            if mid in self.handled:
                self.repeats += 1
            elif mid in self.sent_at:
                self.handled.add(mid)
                self.window.append(when - self.sent_at[mid])
            elif final or not mid.startswith(f"m_soak_{self.run}_"):
                self.strays += 1
            else:
                later.append((mid, when))  # its client has not reported it yet
        self.waiting = later

    def sample(self, at: float, seconds: float, cpu: float, final: bool = False) -> Sample:
        self.count_runs(final)
        store = store_size(self.data)
        previous = self.samples[-1] if self.samples else None
        before = previous.store if previous else self.baseline
        grown, grown_db = store.total - before.total, store.database - before.database
        handled_now = len(self.handled) - (previous.handled if previous else 0)
        events, seen = rows(self.data)
        one = Sample(at, len(self.sent_at), len(self.handled), pending(self.url), cuts(self.window), store, events,
                     seen, self.window_sent / seconds if seconds > 0 else 0.0, self.window_late, self.window_lag,
                     cpu / seconds if seconds > 0 else 0.0, grown / handled_now if handled_now else math.nan,
                     grown_db / handled_now if handled_now else math.nan, "drained  " if final else "")
        self.samples.append(one)
        self.window, self.window_sent, self.window_late, self.window_lag = [], 0, 0, 0.0
        return one


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (NaN with fewer than two)."""
    if len(points) < 2:
        return math.nan
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else math.nan


# -- the run ---------------------------------------------------------------------------------------------


def run(minutes: float = 10.0, rate: float = 300.0, every: float = 30.0, drain_timeout: float = 120.0) -> None:
    seconds = minutes * 60
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        folder = Path(tmp)
        server = throughput.Server(APP, WORKERS, folder)
        try:
            throughput.wait_until_serving(server.url, server.process, server.log)
            _soak(server, folder, seconds, rate, every, drain_timeout)
        finally:
            server.close()


def _soak(server: throughput.Server, folder: Path, seconds: float, rate: float, every: float,
          drain_timeout: float) -> None:
    data = folder / "data"
    soak = Soak(secrets.token_hex(4), server.url, data, server.runs, server.pids)
    print(f"soak: gunicorn {' '.join(throughput.gunicorn_settings(WORKERS))}, SQLite inbox (DATA_DIR in {data}); "
          f"{rate:g} distinct deliveries/s for {seconds / 60:g} min from {CLIENT_PROCESSES} client processes x "
          f"{CLIENT_THREADS} threads, open loop; {PEOPLE} senders; a line every {every:g} s", flush=True)
    context = multiprocessing.get_context("fork")
    reports = context.Queue()
    start = time.time() + 1.0
    clients = [context.Process(target=_client, args=(server.url, soak.run, index, rate, seconds, start, reports),
                               daemon=True) for index in range(CLIENT_PROCESSES)]
    soak.baseline = store_size(data)
    cpu_mark = accounting.tree_cpu(soak.roots)
    for client in clients:
        client.start()
    done, next_at, window_start = 0, start + every, start

    def drain_reports(wait: float) -> None:
        nonlocal done
        deadline = time.monotonic() + wait
        while True:
            try:
                items = reports.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if items is None:
                done += 1
            else:
                soak.take(items)
            if time.monotonic() >= deadline:
                return

    def sample(final: bool = False) -> Sample:
        nonlocal cpu_mark, window_start
        now = time.time()
        cpu = accounting.tree_cpu(soak.roots)
        one = soak.sample(now - start, now - window_start, cpu - cpu_mark, final)
        cpu_mark, window_start = cpu, now
        print(one.line(), flush=True)
        return one

    while done < CLIENT_PROCESSES:
        drain_reports(min(0.2, max(0.0, next_at - time.time())))
        if server.process.poll() is not None:
            raise throughput.NotFinished(f"gunicorn exited with {server.process.returncode}; its log ends:\n"
                                         f"{throughput.tail(server.log)}")
        if done < CLIENT_PROCESSES and not any(client.is_alive() for client in clients):
            drain_reports(1.0)
            if done < CLIENT_PROCESSES:
                raise throughput.NotFinished(f"{CLIENT_PROCESSES - done} client process(es) exited without "
                                             "finishing their share")
        if time.time() >= next_at:
            drain_reports(2 * FLUSH_EVERY)  # the reports of what was sent up to now
            sample()
            next_at += every
    for client in clients:
        client.join(10)
    sent_for = max(soak.last_sent - start, 1e-9)
    # The drain: until every accepted delivery ran (or no run came for drain_timeout s), then /healthz at 0.
    progress, last = time.monotonic(), -1
    while len(soak.handled) < len(soak.sent_at) and time.monotonic() - progress < drain_timeout:
        time.sleep(0.1)
        soak.count_runs()
        if len(soak.handled) != last:
            last, progress = len(soak.handled), time.monotonic()
    ran = [when for when in soak.runs.times if not math.isnan(when)]
    drained_in = max(ran) - soak.last_sent if ran else math.nan  # the last handler run after the last send
    settled = throughput.settle(server.url, 10.0)
    time.sleep(1.0)  # a run written after the last count
    final = sample(final=True)
    print(summary(soak, final, seconds, rate, sent_for, drained_in, settled), flush=True)


def summary(soak: Soak, final: Sample, seconds: float, rate: float, sent_for: float, drained_in: float,
            settled: bool) -> str:
    loaded = soak.samples[:-1] or soak.samples  # the samples under load, not the one after the drain
    hour = 3600.0
    total_slope = slope([(one.at, one.store.total) for one in loaded])
    db_slope = slope([(one.at, one.store.database) for one in loaded])
    handled = len(soak.handled)
    kept = final.store.total - soak.baseline.total
    kept_db = final.store.database - soak.baseline.database
    first, last = loaded[0], loaded[-1]
    sent = len(soak.sent_at) + soak.rejected + soak.failed
    target = int(rate * seconds)
    accepted = len(soak.sent_at)
    tally = accounting.tally(list(soak.sent_at), soak.runs.mids, accepted=accepted)
    late = sum(one.late for one in soak.samples)
    lines = [
        "-- summary --",
        f"sent {sent} of {target} scheduled in {sent_for:.0f} s ({sent / sent_for:.1f}/s against {rate:g}/s asked; "
        f"{late} sends over {LATE * 1000:.0f} ms behind schedule); accepted {accepted}, 503 {soak.rejected}, "
        f"failed {soak.failed}; {handled} of them handled, the last {drained_in * 1000:.0f} ms after the last send"
        + ("" if settled else "; /healthz still reported pending work 10 s later"),
        f"store growth: {db_slope * hour / 1e6:.1f} MB/hour for bots.sqlite3 + -wal, {total_slope * hour / 1e6:.1f} "
        f"MB/hour with the arrivals logs (which saw-tooth: a worker's log is removed once rotated at 16 MB and "
        f"read); linear fit of the {len(loaded)} samples under load, extrapolated",
        f"kept per handled event: {kept / handled if handled else math.nan:.0f} B in all, "
        f"{kept_db / handled if handled else math.nan:.0f} B in bots.sqlite3 + -wal, "
        f"{(final.store.db - soak.baseline.db) / handled if handled else math.nan:.0f} B in bots.sqlite3 "
        f"(store {soak.baseline.total / 1e6:.2f} -> {final.store.total / 1e6:.2f} MB over {handled} events; "
        f"arrivals logs {final.store.logs / 1e6:.1f} MB, rotated at 16 MB per worker; README says about "
        f"{README_BYTES_PER_EVENT} B per event for 36 h); rows left: inbox_events {final.events}, "
        f"inbox_seen {final.seen}",
        f"p99 send -> handler run: first window {first.latency[1]:.1f} ms, last window {last.latency[1]:.1f} ms "
        f"(p50 {first.latency[0]:.1f} -> {last.latency[0]:.1f} ms; max over the run "
        f"{max(one.latency[2] for one in loaded):.0f} ms)",
        f"exactly once: {tally.describe()}" + (f"; {soak.repeats} repeated runs" if soak.repeats else "")
        + (f"; {soak.strays} runs of mids not accepted" if soak.strays else ""),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=300.0, help="deliveries per second")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between lines")
    options = parser.parse_args()
    run(options.minutes, options.rate, options.every)


if __name__ == "__main__":
    main()
