"""Soak: 30 minutes at half the measured maximum rate, every delivery answered through a Graph on loopback.

The spec (issue 12): ``--minutes`` (default 30) at half the measured maximum rate, with handlers
replying through a Graph server on loopback: 0 errors, 0 lost, RSS growth under 5 % between minute
5 and the end, and the backlog back to 0 within 10 s of the end.

What runs:

- **the server** as ``bench/throughput.py`` serves its whole path: ``gunicorn --worker-class sync
  --workers 2``, the default SQLite inbox with handler and sender threads in the machine's handler
  process (forked by the first worker; its memory is counted with the workers'),
  ``DATA_DIR`` in a temporary folder; the app is ``bench.replying_bot:app``, whose handler records
  its run (as the counting bot does) and replies ``soak reply to <mid>`` through the outbox, a
  sender thread and the Graph client (retries and idempotency key included);
- **the Graph** is ``bench/graph_standin.py`` on loopback (``GRAPH_API_URL``), in a process of its
  own, answering each ``POST /me/messages`` at once and writing down which delivery it answers, when;
- **the rate**: unless ``--rate`` is given, the maximum whole-path rate of this same server is
  measured first, closed loop: a warm-up of 1,000 deliveries sizes one load of about ``--measure``
  (18) s, sent once each by ``wrk`` (``bench/post.lua``, 8 connections; else Python clients) as
  ``bench/throughput.py`` does; its rate is replies at Graph per second from the first request until
  the last reply; the soak runs at half of it;
- **the load**: distinct signed deliveries (a message id of their own each, 1,000 senders in turn),
  open loop: a few client processes with a few threads each, every thread sending its share on a
  fixed schedule (``start + n / rate``) whatever the answers take; a thread that falls behind sends
  at once and the lag is counted. (Sync workers close the connection after each answer, so a
  client's connection is reopened for every request.)

Every ``--every`` (30) s one line: the minute; deliveries accepted (2xx), handled (distinct accepted
mids whose handler ran) and replied (distinct accepted mids whose reply reached Graph), each backlog,
and ``/healthz``'s pending; send -> handler-run and send -> reply-at-Graph latency p50/p99/max over
the window (all times ``time.time()`` on this machine); the store on disk and its growth per handled
delivery; the rows of ``inbox_events`` and ``inbox_seen``; the rate sent; the server's CPU; the share
of the machine's CPU the hypervisor gave to others (steal, from ``/proc/stat``); the RSS
(``VmRSS``) of the gunicorn master and each worker, and any worker that was replaced.

After the last send: the drain, the time until every accepted delivery has its reply and
``/healthz`` reports nothing pending. Then a verdict against each criterion (errors = any answer
other than 2xx and any connection error; lost = an accepted delivery with no reply at Graph;
duplicates = replies beyond the first for a delivery; RSS of master + workers from minute 5, or the
midpoint of a run under 10 minutes, to the end; the drain), the rate and how it was chosen, the
latency send -> reply, and the store figures. The exit status is 1 when a criterion fails.

Not part of ``make test``. Run: ``make soak SOAK_ARGS="--minutes 2"``, or
``.venv/bin/python -m bench.soak [--minutes 30] [--rate R] [--every 30] [--measure 18]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import queue
import secrets
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import accounting, throughput
from bench.accounting import RunFiles
from bench.graph_standin import GraphStandIn
from bench.payloads import COUNTER_PATH, PEOPLE, sender_id, signed
from bots.deliveries import Deliveries

WORKERS = 2
CLIENT_PROCESSES, CLIENT_THREADS = 2, 4
LATE = 0.1  # a send this many seconds behind its schedule counts as late
FLUSH_EVERY = 0.25  # seconds between a client's reports to the harness
WARMUP = 1000  # deliveries of the warm-up load that sizes the measuring one
#: What README "Nothing accepted is lost" says a finished event leaves behind (its dedupe digest, 36 h).
README_BYTES_PER_EVENT = 60
#: The spec's criteria.
RSS_FROM = 300.0  # seconds: RSS growth is read from minute 5 ...
RSS_LIMIT = 0.05  # ... to the end, under 5 %
DRAIN_LIMIT = 10.0  # seconds from the last send until the backlog is 0
STEAL_NOTED = 0.05  # a window whose steal is this share of the machine or more is reported apart
DRAIN_TIMEOUT = 60.0  # how long the drain is watched at most (beyond the limit, to give the figure)


def served(graph_url: str) -> throughput.App:
    """The server's form: the replying bot, SQLite inbox, whole path, Graph at ``graph_url`` with the
    production retry count (``bench/throughput.py``'s environment tries once)."""
    return throughput.App("soak, whole path with replies", "bench.replying_bot:app",
                          {"INBOX": "sqlite", "GRAPH_API_URL": graph_url, "GRAPH_RETRY_ATTEMPTS": "4"},
                          "sqlite", whole=True)


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


# -- the maximum rate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Maximum:
    """The closed-loop measurement the soak's rate is half of: replies at Graph per second."""

    rate: float
    count: int
    seconds: float  # first request to last reply
    accepted: int
    generator: str
    warmup_rate: float
    problem: str | None = None

    def describe(self) -> str:
        return (f"{self.rate:.0f} replies at Graph/s, closed loop ({self.generator}; {self.count} distinct "
                f"deliveries, {self.accepted} accepted, first request to last reply {self.seconds:.1f} s; "
                f"warm-up {WARMUP} at {self.warmup_rate:.0f}/s)"
                + (f"; PROBLEM: {self.problem}" if self.problem else ""))


def measure_max(server: throughput.Server, standin: GraphStandIn, folder: Path, seconds: float) -> Maximum:
    """The whole path's maximum on this server: a warm-up load sizes one of about ``seconds``; each waits
    until every accepted delivery's reply reached Graph and ``/healthz`` shows nothing pending."""
    name, generator = throughput.pick_generator(None)
    folder.mkdir(parents=True, exist_ok=True)
    bench = throughput.Bench(generator, folder, timeout=60.0)
    app = served(standin.url)
    warm = bench.load(app, server, WARMUP, runs=standin.replies, roots=server.pids)
    if warm.problem or not warm.rate:
        raise throughput.NotFinished(f"the warm-up load before the measurement: {warm.problem or 'no reply'}")
    count = max(WARMUP, int(warm.rate * seconds))
    load = bench.load(app, server, count, runs=standin.replies, roots=server.pids)
    if not load.rate:
        raise throughput.NotFinished(f"the measurement load: {load.problem or 'no reply'}")
    return Maximum(load.rate, count, load.seconds, load.answered.ok, name, warm.rate, load.problem)


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
    """What ``/healthz`` reports pending (events and outbox messages), -1 when it does not answer."""
    try:
        status, body = throughput.http_get(url, "/healthz", timeout=5)
        return int(json.loads(body)["pending"]) if status == 200 else -1
    except (OSError, ValueError, KeyError):
        return -1


def cuts(values: list[float] | array) -> tuple[float, float, float]:
    """p50, p99 and max in milliseconds (NaN when there are none)."""
    if not values:
        return math.nan, math.nan, math.nan
    ms = sorted(value * 1000 for value in values)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p99, ms[-1]


@dataclass(frozen=True)
class Memory:
    """Resident memory (``VmRSS``, kB) of the gunicorn master and of each of its workers, by pid."""

    master: int
    workers: dict[int, int]

    @property
    def total(self) -> int:
        return self.master + sum(self.workers.values())

    def text(self) -> str:
        workers = "+".join(f"{kb / 1024:.1f}" for _, kb in sorted(self.workers.items()))
        return f"RSS {self.total / 1024:5.1f} MB (master {self.master / 1024:.1f}, workers {workers or '-'})"


def rss_kb(pid: int) -> int:
    """``VmRSS`` of ``pid`` in kB, 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def children(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (from ``/proc/<pid>/stat``): the gunicorn master's workers."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if int(text[text.rfind(")") + 2:].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def memory(master: int) -> Memory:
    """The master's RSS and each worker's, the handler process (a worker's child) counted as one more."""
    workers = children(master)
    return Memory(rss_kb(master), {pid: rss_kb(pid) for pid in workers + [kid for w in workers for kid in children(w)]})


@dataclass
class Arrivals:
    """One kind of arrival per message id (handler runs, or replies at Graph), read from ``RunFiles`` and
    matched against the accepted sends: per delivery number how many came, the first's latency.

    Kept compact for long runs: a byte per scheduled delivery, the files' lists emptied once read."""

    files: RunFiles
    prefix: str  # the mids of this soak: ``m_soak_<run>_``
    total: int  # deliveries scheduled
    counts: bytearray = field(init=False)
    done: int = 0  # distinct accepted deliveries with at least one arrival
    repeats: int = 0  # arrivals after the first for a delivery
    strays: int = 0  # arrivals for mids this soak did not have accepted
    waiting: list[tuple[int, float]] = field(default_factory=list)  # arrivals whose send report has not come yet
    window: list[float] = field(default_factory=list)  # latencies of the window
    latencies: array = field(default_factory=lambda: array("d"))  # every first arrival's latency
    last: float = 0.0  # wall-clock time of the latest first arrival

    def __post_init__(self) -> None:
        self.counts = bytearray(self.total)

    def number(self, mid: str) -> int | None:
        """The delivery number of one of this soak's mids, None for any other."""
        if not mid.startswith(self.prefix):
            return None
        tail = mid[len(self.prefix):]
        return int(tail) if tail.isdigit() and int(tail) < self.total else None

    def take(self, sent: array, final: bool = False) -> None:
        """Read what arrived since the last call; ``sent[n]`` is delivery n's send time, NaN until accepted.
        An arrival for a delivery not (yet) reported accepted waits, until ``final`` makes it a stray."""
        self.files.poll()
        fresh = list(zip(self.files.mids, self.files.times, strict=True))
        self.files.mids.clear()
        self.files.times.clear()
        later = []
        for n, when in self.waiting + [(self.number(mid), when) for mid, when in fresh]:
            if n is None:
                self.strays += 1
            elif self.counts[n]:
                self.repeats += 1
                self.counts[n] = min(255, self.counts[n] + 1)
            elif not math.isnan(sent[n]):
                self.counts[n] = 1
                self.done += 1
                self.window.append(when - sent[n])
                self.latencies.append(when - sent[n])
                self.last = max(self.last, when)
            elif final:
                self.strays += 1
            else:
                later.append((n, when))
        self.waiting = later

    def missing(self, sent: array) -> list[int]:
        """Accepted deliveries with no arrival."""
        return [n for n in range(self.total) if not self.counts[n] and not math.isnan(sent[n])]

    def repeated(self) -> list[int]:
        return [n for n in range(self.total) if self.counts[n] > 1]

    def cut_window(self) -> tuple[float, float, float]:
        figures, self.window = cuts(self.window), []
        return figures


@dataclass
class Sample:
    at: float  # seconds since the load started
    accepted: int
    handled: int
    replied: int
    pending: int
    latency: tuple[float, float, float]  # send -> handler run
    reply_latency: tuple[float, float, float]  # send -> reply at Graph
    store: Store
    events: int
    seen: int
    sent_rate: float
    late: int
    max_lag: float
    cpu: float  # share of one CPU the server tree used over the window
    per_event: float  # bytes the store grew by per delivery handled in the window
    per_event_db: float  # the same for bots.sqlite3 + -wal alone
    memory: Memory
    label: str = ""
    steal: float = math.nan  # share of the machine's CPU time the hypervisor gave to others over the window

    def line(self) -> str:
        p50, p99, worst = self.latency
        r50, r99, rworst = self.reply_latency
        mb = self.store.total / 1e6
        return (f"{self.label or f'min {self.at / 60:5.1f}'}  accepted {self.accepted:7d}  handled {self.handled:7d}  "
                f"replied {self.replied:7d}  backlog {self.accepted - self.handled:5d}/"
                f"{self.accepted - self.replied:5d} (pending {self.pending:4d})  "
                f"run ms p50 {p50:5.1f} p99 {p99:6.1f} max {worst:6.1f}  "
                f"reply ms p50 {r50:5.1f} p99 {r99:6.1f} max {rworst:6.1f}  "
                f"store {mb:6.1f} MB (db {self.store.db / 1e6:.1f} wal {self.store.wal / 1e6:.1f} "
                f"logs {self.store.logs / 1e6:.1f}) {self.per_event:+5.0f} B/ev (db+wal {self.per_event_db:+4.0f})  "
                f"rows events {self.events} seen {self.seen}  sent {self.sent_rate:5.1f}/s late {self.late} "
                f"(max {self.max_lag * 1000:.0f} ms)  server CPU {self.cpu:.0%}  steal {self.steal:.0%}  "
                f"{self.memory.text()}")


@dataclass
class Soak:
    """What the harness knows: send times of accepted deliveries, runs and replies read so far, the window's
    figures, the samples and the workers seen."""

    run: str
    url: str
    data: Path
    total: int  # deliveries scheduled
    master: int
    runs: Arrivals
    replies: Arrivals
    sent: array = field(init=False)  # per delivery number: send time once accepted, else NaN
    accepted: int = 0
    rejected: int = 0  # 503
    failed: int = 0  # any other answer, or no answer
    started: float = 0.0  # wall-clock time the schedule starts at
    last_sent: float = 0.0  # wall-clock time of the latest send reported
    window_sent: int = 0
    window_late: int = 0
    window_lag: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    baseline: Store = field(default_factory=lambda: Store(0, 0, 0))  # the store before the first delivery
    workers: set[int] = field(default_factory=set)
    restarts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sent = array("d", [math.nan]) * self.total

    @property
    def errors(self) -> int:
        return self.rejected + self.failed

    def take(self, items: list[tuple[int, float, float, float, int]]) -> None:
        for n, lag, sent, _answered, status in items:
            self.window_sent += 1
            self.window_late += lag > LATE
            self.window_lag = max(self.window_lag, lag)
            self.last_sent = max(self.last_sent, sent)
            if 200 <= status < 300:
                self.sent[n] = sent
                self.accepted += 1
            elif status == 503:
                self.rejected += 1
            else:
                self.failed += 1

    def track(self, final: bool = False) -> None:
        """Read the handler runs and the replies that came since the last call."""
        self.runs.take(self.sent, final)
        self.replies.take(self.sent, final)

    def watch_workers(self, at: float, now: Memory) -> None:
        """Note a worker that is gone or new since the last sample (gunicorn replaced it)."""
        pids = set(now.workers)
        if self.workers and pids != self.workers:
            self.restarts.append(f"min {at / 60:.1f}: workers {sorted(self.workers)} -> {sorted(pids)}")
        self.workers = pids

    def sample(self, at: float, seconds: float, cpu: float, final: bool = False, steal: float = math.nan) -> Sample:
        self.track(final)
        store = store_size(self.data)
        previous = self.samples[-1] if self.samples else None
        before = previous.store if previous else self.baseline
        grown, grown_db = store.total - before.total, store.database - before.database
        handled_now = self.runs.done - (previous.handled if previous else 0)
        events, seen = rows(self.data)
        now = memory(self.master)
        self.watch_workers(at, now)
        one = Sample(at, self.accepted, self.runs.done, self.replies.done, pending(self.url), self.runs.cut_window(),
                     self.replies.cut_window(), store, events, seen,
                     self.window_sent / seconds if seconds > 0 else 0.0, self.window_late, self.window_lag,
                     cpu / seconds if seconds > 0 else 0.0, grown / handled_now if handled_now else math.nan,
                     grown_db / handled_now if handled_now else math.nan, now, "drained  " if final else "", steal)
        self.samples.append(one)
        self.window_sent, self.window_late, self.window_lag = 0, 0, 0.0
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


@dataclass(frozen=True)
class Settings:
    minutes: float = 30.0
    rate: float | None = None  # None: half the measured maximum
    every: float = 30.0
    measure: float = 18.0  # seconds the measuring load lasts, about


def run(settings: Settings) -> bool:
    """Choose the rate (measuring the maximum on a server of its own), then soak a fresh server at it;
    True when every criterion passed."""
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        folder = Path(tmp)
        rate, chosen, maximum = choose_rate(folder / "measure", settings)
        with serving(folder / "soak") as (server, standin):
            return _soak(server, standin, rate, chosen, maximum, settings)


@contextmanager
def serving(folder: Path) -> Iterator[tuple[throughput.Server, GraphStandIn]]:
    """A Graph stand-in and the soak's gunicorn answering through it, in ``folder``; both stopped after."""
    standin = GraphStandIn(folder / "graph")
    try:
        server = throughput.Server(served(standin.url), WORKERS, folder)
        try:
            throughput.wait_until_serving(server.url, server.process, server.log)
            yield server, standin
        finally:
            server.close()
    finally:
        standin.close()


def choose_rate(folder: Path, settings: Settings) -> tuple[float, str, Maximum | None]:
    """The rate asked for, or half the maximum measured on a server set up as the soak's (its own data
    folder, so the soak's store and memory start as a fresh server's); and how it was chosen."""
    if settings.rate is not None:
        return settings.rate, f"{settings.rate:g}/s given with --rate (no measurement)", None
    print(f"measuring the maximum whole-path rate of this server setup (closed loop, about {settings.measure:g} s)"
          " ...", flush=True)
    with serving(folder) as (server, standin):
        maximum = measure_max(server, standin, folder / "loads", settings.measure)
    rate = round(maximum.rate / 2)
    return rate, f"{rate}/s = half the measured maximum, {maximum.describe()}", maximum


def _soak(server: throughput.Server, standin: GraphStandIn, rate: float, chosen: str, maximum: Maximum | None,
          settings: Settings) -> bool:
    seconds = settings.minutes * 60
    data = server.folder / "data"
    run_id = secrets.token_hex(4)
    prefix, total = f"m_soak_{run_id}_", int(rate * seconds)
    soak = Soak(run_id, server.url, data, total, server.process.pid, Arrivals(server.runs, prefix, total),
                Arrivals(standin.replies, prefix, total))
    print(f"soak: gunicorn {' '.join(throughput.gunicorn_settings(WORKERS))}, bench.replying_bot:app, SQLite inbox "
          f"(DATA_DIR in {data}), replies to a Graph stand-in at {standin.url}; rate {chosen}; {total} distinct "
          f"deliveries over {seconds / 60:g} min from {CLIENT_PROCESSES} client processes x {CLIENT_THREADS} "
          f"threads, open loop; {PEOPLE} senders; a line every {settings.every:g} s", flush=True)
    soak.baseline = store_size(data)
    soak.watch_workers(0.0, memory(soak.master))
    watch = HealthWatch(server.url)
    try:
        clock = send(soak, server, rate, seconds, settings.every, watch)
        drained = drain(soak, watch, DRAIN_TIMEOUT)
    finally:
        watch.stop()
    time.sleep(1.0)  # a run or reply written after the last read
    final = clock.sample(final=True)
    report = Report(soak, final, seconds, rate, chosen, maximum, drained, standin)
    print(report.text(), flush=True)
    return report.passed


class HealthWatch:
    """``/healthz`` read every ``every`` s by a thread, from just before the last send: when ``pending``
    first read 0 after a given moment, to time the drain closer than the harness's own loop can."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        self.url, self.every = url, every
        self.readings: list[tuple[float, int]] = []  # (time.time() of the answer, pending)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="healthz-watch", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            value = pending(self.url)
            self.readings.append((time.time(), value))
            self._stop.wait(self.every)

    def zero_after(self, moment: float) -> float | None:
        """The first answer of ``pending: 0`` that came after ``moment``."""
        return next((when for when, value in list(self.readings) if when >= moment and value == 0), None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


@dataclass
class Clock:
    """The windows: when the load started, when the last window began, the server's CPU reading then."""

    soak: Soak
    roots: list[int]
    start: float
    window_start: float = 0.0
    cpu_mark: float = 0.0
    times_mark: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        self.window_start, self.cpu_mark = self.start, accounting.tree_cpu(self.roots)
        self.times_mark = accounting.machine_times()

    def sample(self, final: bool = False) -> Sample:
        """Close the window: take a sample and print its line."""
        now, cpu, times = time.time(), accounting.tree_cpu(self.roots), accounting.machine_times()
        one = self.soak.sample(now - self.start, now - self.window_start, cpu - self.cpu_mark, final,
                               accounting.steal_share(self.times_mark, times))
        self.cpu_mark, self.window_start, self.times_mark = cpu, now, times
        print(one.line(), flush=True)
        return one


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms" if values else "-"


def send(soak: Soak, server: throughput.Server, rate: float, seconds: float, every: float,
         watch: HealthWatch) -> Clock:
    """Run the client processes to the end of their schedule, taking their reports and a sample every
    ``every`` s (and starting ``watch`` a second before the end); raise if gunicorn or a client dies."""
    context = multiprocessing.get_context("fork")
    reports = context.Queue()
    clock = Clock(soak, server.pids, time.time() + 1.0)
    soak.started = clock.start
    clients = [context.Process(target=_client, args=(server.url, soak.run, index, rate, seconds, clock.start,
                                                     reports), daemon=True) for index in range(CLIENT_PROCESSES)]
    for client in clients:
        client.start()
    done, next_at = 0, clock.start + every
    while done < CLIENT_PROCESSES:
        done += take_reports(soak, reports, min(0.2, max(0.0, next_at - time.time())))
        done += check_alive(server, clients, done, lambda: take_reports(soak, reports, 1.0))
        if not watch.started and time.time() >= clock.start + seconds - 1.0:
            watch.start()
        if time.time() >= next_at:
            done += take_reports(soak, reports, 2 * FLUSH_EVERY)  # the reports of what was sent up to now
            clock.sample()
            next_at += every
    for client in clients:
        client.join(10)
    return clock


def take_reports(soak: Soak, reports: multiprocessing.Queue, wait: float) -> int:
    """Take the clients' reports for ``wait`` s; how many clients said they are done."""
    done, deadline = 0, time.monotonic() + wait
    while True:
        try:
            items = reports.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return done
        if items is None:
            done += 1
        else:
            soak.take(items)
        if time.monotonic() >= deadline:
            return done


def check_alive(server: throughput.Server, clients: list, done: int, last_reports: Callable[[], int]) -> int:
    """Raise when gunicorn exited, or every client exited without saying it was done; when they all
    exited, take their last reports: how many more said they are done."""
    if server.process.poll() is not None:
        raise throughput.NotFinished(f"gunicorn exited with {server.process.returncode}; its log ends:\n"
                                     f"{throughput.tail(server.log)}")
    if done >= CLIENT_PROCESSES or any(client.is_alive() for client in clients):
        return 0
    more = last_reports()
    if done + more < CLIENT_PROCESSES:
        raise throughput.NotFinished(f"{CLIENT_PROCESSES - done - more} client process(es) exited without "
                                     "finishing their share")
    return more


def drain(soak: Soak, watch: HealthWatch, timeout: float) -> float:
    """Seconds from the last send until every accepted delivery has its reply at Graph and ``/healthz``
    reports nothing pending: the first ``pending: 0`` read after both the last send and the last reply
    (NaN when that did not happen within ``timeout`` s)."""
    if not watch.started:
        watch.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        soak.track()
        if soak.replies.done >= soak.accepted:
            zero = watch.zero_after(max(soak.last_sent, soak.replies.last))
            if zero is not None:
                return zero - soak.last_sent
        time.sleep(0.05)
    return math.nan


@dataclass(frozen=True)
class Criterion:
    name: str
    measured: str
    spec: str
    passed: bool

    def line(self) -> str:
        return f"{self.name:<36} {self.measured:<58} {self.spec:<10} {'PASS' if self.passed else 'FAIL'}"


@dataclass
class Report:
    """The verdict against each criterion of the spec, then the other figures."""

    soak: Soak
    final: Sample
    seconds: float
    rate: float
    chosen: str
    maximum: Maximum | None
    drained: float
    standin: GraphStandIn

    @property
    def loaded(self) -> list[Sample]:
        """The samples under load, not the one after the drain."""
        return self.soak.samples[:-1] or self.soak.samples

    def criteria(self) -> list[Criterion]:
        soak = self.soak
        lost = soak.replies.missing(soak.sent)
        growth, rss = self.rss_growth()
        return [
            Criterion("errors (non-2xx, connection)", f"{soak.errors} (503: {soak.rejected}, other or no answer: "
                      f"{soak.failed}) of {soak.accepted + soak.errors} sent", "0", soak.errors == 0),
            Criterion("lost (accepted, no reply at Graph)", f"{len(lost)} of {soak.accepted} accepted"
                      + self.some(lost), "0", not lost),
            Criterion("duplicates (replies beyond one)", f"{soak.replies.repeats} extra replies"
                      + self.some(soak.replies.repeated()) + (f"; {soak.replies.strays} replies for no accepted "
                      "delivery" if soak.replies.strays else ""), "0",
                      soak.replies.repeats == 0 and soak.replies.strays == 0),
            Criterion("RSS growth, master + workers", rss, f"< {RSS_LIMIT:.0%}",
                      not math.isnan(growth) and growth < RSS_LIMIT and not soak.restarts),
            Criterion("backlog drained after the last send",
                      f"{self.drained:.2f} s (every reply at Graph and /healthz pending 0)"
                      if not math.isnan(self.drained) else f"not within {DRAIN_TIMEOUT:.0f} s",
                      f"<= {DRAIN_LIMIT:.0f} s", not math.isnan(self.drained) and self.drained <= DRAIN_LIMIT),
        ]

    def some(self, numbers: list[int], limit: int = 3) -> str:
        if not numbers:
            return ""
        named = ", ".join(mid_of(self.soak.run, n) for n in numbers[:limit])
        return f" ({named}{', ...' if len(numbers) > limit else ''})"

    def rss_growth(self) -> tuple[float, str]:
        """Growth of master + workers RSS from minute 5 (the midpoint of a shorter run) to the final sample."""
        frm = min(RSS_FROM, self.seconds / 2)
        start = next((one for one in self.loaded if one.at >= frm - 1.0), None)
        if start is None or not start.memory.total:
            return math.nan, f"no sample at min {frm / 60:.1f}"
        end = self.final.memory
        growth = end.total / start.memory.total - 1
        label = "min 5" if frm == RSS_FROM else f"min {start.at / 60:.1f} (midpoint)"
        text = f"{growth:+.1%} ({label} {start.memory.total / 1024:.1f} MB -> end {end.total / 1024:.1f} MB)"
        if self.soak.restarts:
            text += f"; worker replaced: {'; '.join(self.soak.restarts)}"
        return growth, text

    @property
    def passed(self) -> bool:
        return all(one.passed for one in self.criteria())

    def text(self) -> str:
        criteria = self.criteria()
        lines = ["-- verdict (issue 12: bench/soak.py) --",
                 f"{'criterion':<36} {'measured':<58} {'spec':<10} verdict",
                 *(one.line() for one in criteria),
                 f"overall: {'PASS' if all(one.passed for one in criteria) else 'FAIL'}",
                 f"rate: {self.chosen}",
                 *self.figures()]
        return "\n".join(lines)

    def steal_figure(self) -> str:
        """Reply p99 in the windows where the hypervisor took 5 % of the machine or more, against the others."""
        windows = [one for one in self.loaded if not math.isnan(one.steal)]
        if not windows:
            return "steal: not measured (no /proc/stat)"
        stolen = [one.reply_latency[1] for one in windows if one.steal >= STEAL_NOTED]
        calm = [one.reply_latency[1] for one in windows if one.steal < STEAL_NOTED]
        return (f"steal (CPU the hypervisor gave to others): {statistics.fmean(one.steal for one in windows):.1%} "
                f"of the machine on average; reply p99 median {_median_ms(stolen)} in the {len(stolen)} windows at "
                f"{STEAL_NOTED:.0%} or more, {_median_ms(calm)} in the {len(calm)} others")

    def figures(self) -> list[str]:
        soak, final, loaded = self.soak, self.final, self.loaded
        first, last = loaded[0], loaded[-1]
        sent = soak.accepted + soak.errors
        sent_for = max(soak.last_sent - soak.started, 1e-9)
        late = sum(one.late for one in soak.samples)
        r50, r99, rmax = cuts(soak.replies.latencies)
        others = self.standin.others()
        worst_lag = max(one.max_lag for one in soak.samples)
        return [
            f"sent {sent} of {soak.total} scheduled ({sent / sent_for:.1f}/s against {self.rate:g}/s asked; {late} "
            f"sends over {LATE * 1000:.0f} ms behind schedule, the most {worst_lag * 1000:.0f} ms); "
            f"handled {soak.runs.done}, replied {soak.replies.done}; last reply "
            f"{(soak.replies.last - soak.last_sent) * 1000:.0f} ms after the last send",
            f"latency send -> reply at Graph over the run: p50 {r50:.1f} ms, p99 {r99:.1f} ms, max {rmax:.0f} ms "
            f"({len(soak.replies.latencies)} replies); send -> handler run p99 first window {first.latency[1]:.1f} ms,"
            f" last {last.latency[1]:.1f} ms",
            self.steal_figure(),
            f"handler runs: {soak.runs.done} of {soak.accepted} accepted ran"
            + (f", {soak.runs.repeats} repeated" if soak.runs.repeats else "")
            + (f", {soak.runs.strays} for mids not accepted" if soak.runs.strays else "")
            + (f"; Graph calls other than replies: {len(others)} ({', '.join(sorted(set(others))[:3])})"
               if others else ""),
            self.memory_line(),
            *self.store_lines(final),
            *self.repeat_lines(),
        ]

    def memory_line(self) -> str:
        first = self.soak.samples[0].memory
        return (f"RSS: first sample {first.text()}; end {self.final.memory.text()}; "
                f"workers replaced: {'; '.join(self.soak.restarts) or 'none'}")

    def store_lines(self, final: Sample) -> list[str]:
        soak, loaded, hour = self.soak, self.loaded, 3600.0
        total_slope = slope([(one.at, one.store.total) for one in loaded])
        db_slope = slope([(one.at, one.store.database) for one in loaded])
        handled = soak.runs.done or math.nan
        return [
            f"store growth: {db_slope * hour / 1e6:.1f} MB/hour for bots.sqlite3 + -wal, {total_slope * hour / 1e6:.1f}"
            f" MB/hour with the arrivals logs (rotated at 16 MB per worker); linear fit of the {len(loaded)} samples "
            "under load, extrapolated",
            f"kept per handled event: {(final.store.total - soak.baseline.total) / handled:.0f} B in all, "
            f"{(final.store.database - soak.baseline.database) / handled:.0f} B in bots.sqlite3 + -wal "
            f"(README says about {README_BYTES_PER_EVENT} B per event for 36 h); rows left: inbox_events "
            f"{final.events}, inbox_seen {final.seen}",
        ]

    def repeat_lines(self) -> list[str]:
        """For repeated replies: were they one effect retried (the same idempotency key) or a second reply?"""
        repeated = self.soak.replies.repeated()[:20]
        if not repeated:
            return []
        keys = self.standin.keys({mid_of(self.soak.run, n) for n in repeated})
        same = sum(len(set(found)) == 1 for found in keys.values())
        return [f"repeated replies (first {len(repeated)}): {same} with one idempotency key on every call (an "
                f"effect retried), {len(keys) - same} with several (the reply made again)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, help="deliveries per second (default: half the measured maximum)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between lines")
    parser.add_argument("--measure", type=float, default=18.0, help="seconds the measuring load lasts, about")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(0 if run(Settings(options.minutes, options.rate, options.every, options.measure)) else 1)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (``timeout``, a CI job cancelled) ends the soak as Ctrl-C does: its servers are stopped on the way
    out instead of being left running."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
