"""HTTP under gunicorn: events handled per second, whole path, against the bare floor's requests per second.

Every app is served by its own ``gunicorn`` with the same settings, sync workers, once with one
worker process and once with two (``--worker-class sync --workers 1|2``), on a free loopback port:

- the floor (``bench/floor.py``) and the hand-written HMAC receiver (``bench/peer_hmac.py``);
- the counting bench bot (``bench/counting_bot.py``, served as ``bench/wsgi_bench.py`` builds it with
  ``app.create_app``) with the SQLite inbox and the in-memory one, each as its *request path* alone
  (``HANDLER_THREADS=0 OUTBOX_THREADS=0``; for ``memory`` an executor that runs nothing) and
  *whole* (handler and sender threads running in the gunicorn workers);
- with ``BENCH_REDIS_URL`` set, the Celery inbox: the web process alone (request path, no worker
  running) and whole, with ``celery -A worker worker --pool prefork --concurrency 1`` and then ``2``
  running the same bot (``HANDLERS=bench.bench_bots``).

A load is a fixed number of distinct signed deliveries (fresh message ids, 1,000 senders in turn),
each sent once: by ``wrk`` with ``bench/post.lua`` when it is installed, else by a few Python client
processes. Its rate is, for the request path, 2xx answers per second from the first request to
the last answer; for the whole path, deliveries handled per second from the first request until
the last handler ran (the counting bot's run files say when), and the round also checks that each
accepted delivery ran exactly once. The CPU of the work is counted too: ``utime + stime`` of the
gunicorn master and workers (and of the Celery worker and Redis for the Celery rows), children
included, from ``/proc``, before the load and after ``/healthz`` says nothing is pending.

Each load of an app comes right after a load of the floor, and an app's figure is the median over its
loads of the ratio within each pair: this machine's CPU speed drifts by up to 2x over seconds with no
steal shown, and two loads a moment apart share most of that drift (``bench/inprocess.py`` says more).
Every wait has a time-out, and an error names what did not finish.

(The module is not called ``http.py``: ``python bench/run.py`` puts ``bench/`` first on
``sys.path``, where that name would hide the standard library's ``http``.)

Run alone: ``.venv/bin/python -m bench.throughput [--loadgen wrk|python] [--rounds 5] [--seconds 1]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from bench import accounting, payloads
from bench.accounting import RunFiles, Tally
from bench.payloads import COUNTER_CREDENTIALS, COUNTER_PATH, DEAD_GRAPH_URL, Signed

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"
CELERY = Path(sys.executable).parent / "celery"
LUA = Path(__file__).with_name("post.lua")
WRK_THREADS, WRK_CONNECTIONS = 1, 8
PYTHON_CLIENTS = 4
WORKER_COUNTS = (1, 2)
CELERY_CONCURRENCY = (1, 2)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
FLOOR, PEER = "floor", "HMAC receiver"
#: Targets, events handled per second over the floor's requests per second (whole path); the Celery one
#: applies with two gunicorn workers and two Celery worker processes.
TARGETS = {"sqlite": 0.75, "memory": 0.85, "celery": 0.5}
CELERY_TARGET_AT = (2, 2)  # (gunicorn workers, Celery worker processes)


def gunicorn_settings(workers: int) -> tuple[str, ...]:
    """What every app is served with: sync workers, no access log, no control socket."""
    return ("--worker-class", "sync", "--workers", str(workers), "--graceful-timeout", "5", "--no-control-socket")


@dataclass(frozen=True)
class App:
    """One form served: gunicorn's module, the settings it adds, which inbox, whether handlers run,
    and for Celery's whole path how many worker processes run its handlers."""

    name: str
    module: str
    settings: dict[str, str] = field(default_factory=dict)
    inbox: str | None = None
    whole: bool = False
    celery: int = 0

    @property
    def server(self) -> str:
        """The gunicorn this app is loaded on: Celery's request path and whole path share one web."""
        return "Celery web" if self.inbox == "celery" else self.name


REQUEST_PATH = {"HANDLER_THREADS": "0", "OUTBOX_THREADS": "0"}
APPS = [App(FLOOR, "bench.floor:app"), App(PEER, "bench.peer_hmac:app"),
        App("SQLite, request path", "bench.wsgi_bench:app", {"INBOX": "sqlite", **REQUEST_PATH}, "sqlite"),
        App("SQLite, whole path", "bench.wsgi_bench:app", {"INBOX": "sqlite"}, "sqlite", whole=True),
        App("memory, request path", "bench.wsgi_bench:discarding", {"INBOX": "memory", **REQUEST_PATH}, "memory"),
        App("memory, whole path", "bench.wsgi_bench:app", {"INBOX": "memory"}, "memory", whole=True)]
CELERY_WEB = App("Celery, request path", "bench.wsgi_bench:app", {"INBOX": "celery"}, "celery")
CELERY_WHOLE = [App(f"Celery, whole path, {n} worker process{'es' if n > 1 else ''}", CELERY_WEB.module,
                    CELERY_WEB.settings, "celery", whole=True, celery=n) for n in CELERY_CONCURRENCY]


class NotFinished(RuntimeError):
    """Something the benchmark waited for did not happen in time; the message names it."""


@dataclass(frozen=True)
class Answered:
    """What a load generator saw: answers by kind, and when the first request left and the last answer came."""

    ok: int
    rejected: int  # 503: back-pressure
    failed: int  # any other answer, and socket errors
    start: float  # wall clock (time.time() or file mtimes)
    end: float


@dataclass(frozen=True)
class Load:
    """One timed load of one app."""

    app: str
    sent: int
    answered: Answered
    handled: int  # distinct deliveries whose handler ran; for the request path, the 2xx answers
    seconds: float  # first request to last answer, or to the last handler run
    cpu: float  # seconds of CPU of the serving processes over the load and its drain
    tally: Tally | None = None
    problem: str | None = None

    @property
    def rate(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu * 1e6 / self.handled if self.handled else float("nan")


def _rate(load: Load) -> float:
    return load.rate


def _cpu_us(load: Load) -> float:
    return load.cpu_us


@dataclass
class Measured:
    app: App
    workers: int
    loads: list[Load] = field(default_factory=list)
    #: (the floor's load, this app's load just after it): what the figure is read from; none for the floor.
    pairs: list[tuple[Load, Load]] = field(default_factory=list)

    @property
    def valid(self) -> list[Load]:
        return [load for load in self.loads if load.problem is None]

    @property
    def shares(self) -> list[float]:
        """Rate over the floor's in the load just before, for each completed pair, lowest first."""
        return accounting.pair_ratios(self.pairs, _rate)

    @property
    def share(self) -> float:
        """The median of :attr:`shares` (1 for the floor itself): the figure a target is read against."""
        return accounting.paired_median(self.pairs, _rate)

    @property
    def cpu_share(self) -> float:
        """CPU per event over the floor's, the median over the same pairs."""
        return accounting.paired_median(self.pairs, _cpu_us)

    @property
    def rate(self) -> float:
        return statistics.median(load.rate for load in self.valid) if self.valid else float("nan")

    @property
    def cpu_us(self) -> float:
        return statistics.median(load.cpu_us for load in self.valid) if self.valid else float("nan")

    @property
    def spread(self) -> float:
        rates = [load.rate for load in self.valid]
        return (max(rates) - min(rates)) / statistics.median(rates) if len(rates) > 1 else 0.0

    @property
    def problems(self) -> list[str]:
        return [load.problem for load in self.loads if load.problem]

    @property
    def target(self) -> float | None:
        """The whole-path target this figure is read against, if any."""
        if not self.app.whole:
            return None
        if self.app.inbox == "celery":
            return TARGETS["celery"] if (self.workers, self.app.celery) == CELERY_TARGET_AT else None
        return TARGETS.get(self.app.inbox or "")


@dataclass
class Result:
    generator: str
    rounds: int
    count: dict[int, int]  # deliveries per load, by gunicorn workers
    measured: dict[tuple[int, str], Measured]
    notes: list[str] = field(default_factory=list)

    def floor(self, workers: int) -> Measured:
        return self.measured[(workers, FLOOR)]

    def peer(self, workers: int) -> Measured:
        return self.measured[(workers, PEER)]


# -- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody is bound to right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET ``path`` and return the status and body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def tail(log: Path, size: int = 1500) -> str:
    """The end of a log, for an error message."""
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def wait_until_serving(url: str, process: subprocess.Popen, log: Path | None = None, timeout: float = 30.0) -> None:
    """Block until the server answers any HTTP request; raise if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotFinished(f"gunicorn exited with {process.returncode} before serving"
                              + (f"; its log ends:\n{tail(log)}" if log else ""))
        try:
            http_get(url, "/")
            return
        except OSError:
            time.sleep(0.1)
    raise NotFinished(f"gunicorn did not answer at {url} within {timeout:.0f} s"
                      + (f"; its log ends:\n{tail(log)}" if log else ""))


def terminate(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group this harness started, then SIGKILL it if it is still there after ``grace``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass


def base_env(folder: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment of a served process: nothing from the machine but ``PATH``; the bot's credentials,
    a Graph nobody answers, a data folder and run-file folder of its own, quiet logs."""
    env = {"PATH": os.environ.get("PATH", ""), "DOTENV": "0", **COUNTER_CREDENTIALS, "GRAPH_API_URL": DEAD_GRAPH_URL,
           "GRAPH_RETRY_ATTEMPTS": "1", "DATA_DIR": str(folder / "data"), "BENCH_RUNS_DIR": str(folder / "runs"),
           "LOG_LEVEL": "WARNING", **settings}
    if settings.get("INBOX") == "celery":
        env["REDIS_URL"] = REDIS_URL
    (folder / "data").mkdir(parents=True, exist_ok=True)  # parents: the folder itself too
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    return env


class Server:
    """``gunicorn <module>`` with the bench settings on a free port, in a process group of its own."""

    def __init__(self, app: App, workers: int, folder: Path) -> None:
        self.folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "gunicorn.log"
        args = [str(GUNICORN), app.module, "--bind", urlsplit(self.url).netloc, *gunicorn_settings(workers)]
        env = base_env(folder, app.settings)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.runs = RunFiles(folder / "runs")

    @property
    def pids(self) -> list[int]:
        return [self.process.pid]

    def close(self) -> None:
        terminate(self.process)


class CeleryWorker:
    """``celery -A worker worker --pool prefork --concurrency N`` serving the counting bot."""

    def __init__(self, concurrency: int, folder: Path) -> None:
        env = base_env(folder, {"INBOX": "celery", "HANDLERS": "bench.bench_bots"})
        self.log = folder / "celery.log"
        args = [str(CELERY), "-A", "worker", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
                "--loglevel", "warning", "--without-mingle", "--without-gossip",
                "--hostname", f"bench-{concurrency}-{os.getpid()}@%h"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.runs = RunFiles(folder / "runs")

    def check(self) -> None:
        if self.process.poll() is not None:
            raise NotFinished(f"the Celery worker exited with {self.process.returncode}; its log ends:\n"
                              f"{tail(self.log)}")

    def close(self) -> None:
        terminate(self.process, grace=10.0)


def redis_pid() -> int | None:
    """The bench Redis server's pid when it runs on this machine (its CPU counts for the Celery rows)."""
    try:
        import redis
        pid = int(redis.Redis.from_url(REDIS_URL).info("server")["process_id"])
    except Exception:
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def flush_redis() -> None:
    """Empty the bench's Redis database: no lanes, keys or tasks left from an earlier load."""
    import redis
    redis.Redis.from_url(REDIS_URL).flushdb()


# -- loads --------------------------------------------------------------------------------------------


def write_pool(path: Path, deliveries: list[Signed]) -> Path:
    """One delivery a line as ``<signature> <body>``, for wrk or the Python clients."""
    with path.open("wb") as out:
        for delivery in deliveries:
            out.write(delivery.signature.encode() + b" " + delivery.body + b"\n")
    return path


#: Sends every delivery of a pool file once to ``url`` + path; answers what it saw.
LoadGenerator = Callable[[str, str, Path, int, float], Answered]


def wrk_load(url: str, path: str, pool: Path, count: int, timeout: float) -> Answered:
    """wrk with ``post.lua``: each thread sends its share once, marks its first send and its last answer,
    and stops; wrk is interrupted once every thread is done (or after ``timeout``)."""
    prefix = str(pool) + "."
    args = ["wrk", "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{int(timeout) + 30}s", "--timeout",
            "10s", "-s", str(LUA), url + path, "--", str(pool), str(WRK_THREADS), prefix]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    done = [Path(f"{prefix}done-{n}") for n in range(WRK_THREADS)]
    deadline = time.monotonic() + timeout
    while not all(marker.exists() for marker in done) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    finished = all(marker.exists() for marker in done)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output = process.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    found = re.search(r"Answered: (\d+) ok, (\d+) rejected, (\d+) failed", output)
    if found is None:
        raise NotFinished(f"wrk did not report its answers:\n{output[-1500:]}")
    ok, rejected, failed = map(int, found.groups())
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed += sum(map(int, errors.groups())) if errors else 0
    if not finished:
        raise NotFinished(f"wrk had {ok + rejected} of {count} deliveries answered after {timeout:.0f} s "
                          f"({failed} failed)")
    starts = [Path(f"{prefix}start-{n}").stat().st_mtime_ns / 1e9 for n in range(WRK_THREADS)]
    return Answered(ok, rejected, failed, min(starts), max(marker.stat().st_mtime_ns / 1e9 for marker in done))


def python_load(url: str, path: str, pool: Path, count: int, timeout: float) -> Answered:
    """``PYTHON_CLIENTS`` processes, each sending its share of the pool once on one connection."""
    jobs = [(url, path, str(pool), index, PYTHON_CLIENTS, timeout) for index in range(PYTHON_CLIENTS)]
    with multiprocessing.get_context("fork").Pool(PYTHON_CLIENTS) as clients:
        outcomes = clients.starmap(_client, jobs)
    ok, rejected, failed = (sum(outcome[n] for outcome in outcomes) for n in range(3))
    if ok + rejected + failed < count:
        raise NotFinished(f"the Python clients had {ok + rejected + failed} of {count} deliveries answered "
                          f"within {timeout:.0f} s")
    return Answered(ok, rejected, failed, min(o[3] for o in outcomes), max(o[4] for o in outcomes))


def _client(url: str, path: str, pool: str, index: int, stride: int, timeout: float
            ) -> tuple[int, int, int, float, float]:
    """One client process: POST its share once each; 2xx, 503 and other counts, first send, last answer."""
    lines = Path(pool).read_bytes().splitlines()[index::stride]
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    counts = [0, 0, 0]
    first = time.time()
    deadline = time.monotonic() + timeout
    for line in lines:
        if time.monotonic() > deadline:
            break
        signature, body = line.split(b" ", 1)
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json",
                                                    "X-Hub-Signature-256": signature.decode()})
            response = connection.getresponse()
            response.read()
        except OSError:
            counts[2] += 1
            connection.close()
            continue
        counts[0 if 200 <= response.status < 300 else 1 if response.status == 503 else 2] += 1
    last = time.time()
    connection.close()
    return counts[0], counts[1], counts[2], first, last


def pick_generator(name: str | None) -> tuple[str, LoadGenerator]:
    """``wrk`` when installed (or asked for), else the Python clients."""
    if name == "python" or (name is None and shutil.which("wrk") is None):
        return f"python ({PYTHON_CLIENTS} processes, one connection each)", python_load
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk, or use --loadgen python")
    return f"wrk (-t{WRK_THREADS} -c{WRK_CONNECTIONS}, bench/post.lua)", wrk_load


def probe(url: str) -> str:
    """What the app answers one fresh delivery: for an error message."""
    delivery = payloads.distinct(1)[0]
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("POST", delivery.path, delivery.body, delivery.headers)
        response = connection.getresponse()
        return f"{response.status} {response.read()[:200].decode(errors='replace').strip()}"
    except OSError as error:
        return f"with an error: {error}"
    finally:
        connection.close()


def settle(url: str, timeout: float) -> bool:
    """True once ``/healthz`` reports ``pending: 0`` three times in a row (each answer may come from
    another worker); False after ``timeout``."""
    deadline, zeros = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        try:
            status, body = http_get(url, "/healthz")
            zeros = zeros + 1 if status == 200 and json.loads(body).get("pending") == 0 else 0
        except (OSError, ValueError):
            zeros = 0
        if zeros >= 3:
            return True
        time.sleep(0.01)
    return False


@dataclass
class Bench:
    """What one worker count's loads share: the generator, the pool folder, time-outs."""

    generator: LoadGenerator
    folder: Path
    timeout: float
    made: int = 0

    def load(self, app: App, server: Server, count: int, *, runs: RunFiles | None = None,
             roots: list[int] | None = None, check: Callable[[], None] | None = None) -> Load:
        """Send ``count`` fresh deliveries to ``server``; for the whole path wait until ``runs`` has a run
        for every accepted one and ``/healthz`` shows nothing pending; CPU of ``roots`` over it all."""
        deliveries = payloads.distinct(count)
        self.made += 1
        pool = write_pool(self.folder / f"{self.made}.pool", deliveries)
        roots = roots or server.pids
        if runs is not None:
            runs.mark(mid for delivery in deliveries for mid in delivery.mids)
        cpu = accounting.tree_cpu(roots)
        try:
            answered = self.generator(server.url, COUNTER_PATH, pool, count, self.timeout)
        except NotFinished as error:
            return Load(app.name, count, Answered(0, 0, count, 0, 0), 0, 0, 0, problem=f"{app.name}: {error}")
        problem, tally, end, handled = None, None, answered.end, answered.ok
        if app.whole and runs is not None:
            problem = self._drain(app, runs, answered.ok, check)
            if problem is None and not settle(server.url, 10.0):
                problem = f"{app.name}: /healthz still reported pending work 10 s after the last handler ran"
            tally = accounting.tally([m for d in deliveries for m in d.mids], runs.mids, accepted=answered.ok)
            handled = tally.handled
            end = max(end, runs.last_write)
            if problem is None and not tally.ok:
                problem = f"{app.name}: {tally.describe()}"
        cpu = accounting.tree_cpu(roots) - cpu
        pool.unlink()
        for marker in self.folder.glob(f"{pool.name}.*"):
            marker.unlink()
        if problem is None and answered.failed:
            problem = (f"{app.name}: {answered.failed} of {count} answers were neither 2xx nor 503, or failed; "
                       f"a delivery sent now is answered {probe(server.url)}")
        return Load(app.name, count, answered, handled, end - answered.start, cpu, tally, problem)

    def _drain(self, app: App, runs: RunFiles, accepted: int, check: Callable[[], None] | None) -> str | None:
        """Wait until ``accepted`` distinct deliveries of the load have run; give up after ``timeout`` s
        without a new one."""
        last, progress = runs.poll(), time.monotonic()
        while last < accepted:
            time.sleep(0.01)
            if check is not None:
                check()
            count = runs.poll()
            if count != last:
                last, progress = count, time.monotonic()
            elif time.monotonic() - progress > self.timeout:
                return (f"{app.name}: handlers ran for {last} of {accepted} accepted deliveries, none more in "
                        f"{self.timeout:.0f} s")
        return None


# -- the run ------------------------------------------------------------------------------------------


@contextmanager
def servers(apps: list[App], workers: int, folder: Path) -> Iterator[dict[str, Server]]:
    """Every app's gunicorn (one per ``App.server``), started together, stopped at the end."""
    with ExitStack() as stack:
        started: dict[str, Server] = {}
        for app in apps:
            if app.server not in started:
                name = re.sub(r"\W+", "-", app.server).strip("-")
                started[app.server] = Server(app, workers, folder / f"w{workers}-{name}")
                stack.callback(started[app.server].close)
        for server in started.values():
            wait_until_serving(server.url, server.process, server.log)
        yield started


def run(*, rounds: int = 5, seconds: float = 1.0, warmup: int = 300, loadgen: str | None = None,
        workers: tuple[int, ...] = WORKER_COUNTS, timeout: float = 30.0) -> Result:
    """For each worker count: serve every app, warm them up, size a load to last about ``seconds`` on
    the floor, and run ``rounds`` alternating rounds; then the Celery worker phases."""
    name, generator = pick_generator(loadgen)
    result = Result(name, rounds, {}, {})
    if not REDIS_URL:
        result.notes.append("Celery rows skipped: BENCH_REDIS_URL is not set (make bench starts a Redis and sets it)")
    apps = APPS + ([CELERY_WEB] if REDIS_URL else [])
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        for count_of_workers in workers:
            folder = Path(tmp) / f"w{count_of_workers}"
            folder.mkdir()
            bench = Bench(generator, folder, timeout)
            if REDIS_URL:
                flush_redis()
            with servers(apps, count_of_workers, folder) as served:
                run_workers(bench, result, served, apps, count_of_workers, rounds=rounds, seconds=seconds,
                            warmup=warmup)
    return result


def run_workers(bench: Bench, result: Result, served: dict[str, Server], apps: list[App], workers: int, *,
                rounds: int, seconds: float, warmup: int) -> None:
    """One worker count: warm-ups, the sizing, the rounds, the Celery worker phases."""
    def measure(app: App, count: int, worker: CeleryWorker | None = None) -> Load:
        server = served[app.server]
        roots = server.pids
        runs = server.runs
        if app.inbox == "celery":
            roots = roots + ([worker.process.pid] if worker else []) + ([pid] if (pid := redis_pid()) else [])
            runs = worker.runs if worker else None
        load = bench.load(app, server, count, runs=runs if app.whole else None, roots=roots,
                          check=worker.check if worker else None)
        if app is CELERY_WEB:
            flush_redis()  # no worker runs: drop the backlog this load left
        return load

    table = {app.name: result.measured.setdefault((workers, app.name), Measured(app, workers))
             for app in apps + (CELERY_WHOLE if REDIS_URL else [])}
    working = []
    for app in apps:
        warm = measure(app, warmup)
        if warm.problem:
            table[app.name].loads.append(replace(warm, problem=f"warm-up: {warm.problem}"))
        else:
            working.append(app)
    floor_app = apps[0]
    if floor_app not in working:
        raise NotFinished(f"{workers} gunicorn worker(s): the floor did not serve: {table[FLOOR].problems[0]}")
    sizing = measure(floor_app, max(warmup, 500))
    count = max(200, int(sizing.rate * seconds)) if sizing.rate else 1000
    result.count[workers] = count
    def pair(app: App, worker: CeleryWorker | None = None) -> None:
        """A load of the floor, then one of ``app``: the pair its figure is read from."""
        floor = measure(floor_app, count)
        load = measure(app, count, worker)
        table[floor_app.name].loads.append(floor)
        table[app.name].loads.append(load)
        table[app.name].pairs.append((floor, load))

    for _ in range(rounds):
        for app in working[1:]:
            pair(app)
    if not REDIS_URL:
        return
    for app in CELERY_WHOLE:
        if CELERY_WEB not in working:
            table[app.name].loads.append(replace(table[CELERY_WEB.name].loads[0], app=app.name,
                                                 problem="not run: the Celery web process did not accept the "
                                                         "warm-up deliveries"))
            continue
        worker = CeleryWorker(app.celery, bench.folder / f"celery-{app.celery}")
        try:
            warm = measure(app, warmup, worker)  # also waits for the worker to boot
            if warm.problem:
                table[app.name].loads.append(replace(warm, problem=f"warm-up: {warm.problem}"))
                continue
            for _ in range(rounds):
                pair(app, worker)
        except NotFinished as error:
            table[app.name].loads.append(Load(app.name, 0, Answered(0, 0, 0, 0, 0), 0, 0, 0,
                                              problem=f"{app.name}: {error}"))
        finally:
            worker.close()
            flush_redis()


def report(result: Result) -> str:
    """Per worker count: each app's median rate, its ratio to the floor's and the HMAC receiver's, CPU."""
    lines = [f"gunicorn --worker-class sync --workers 1|2; load: {result.generator}; median of {result.rounds} "
             "rounds; each load sends every delivery once",
             "rate: request path = 2xx answers/s, first request to last answer; whole path = deliveries handled/s, "
             "first request until the last handler ran",
             "floor, CPU/floor = median over the loads of the figure / the floor's in the load just before "
             "(pairs: lowest-highest)"]
    for workers in sorted(result.count):
        peer = result.peer(workers)
        lines.append(f"-- {workers} gunicorn worker{'s' if workers > 1 else ''}, {result.count[workers]} deliveries "
                     "a load --")
        lines.append(f"{'app':<38} {'rate/s':>7} {'spread':>6} {'floor':>6} {'pairs':>9} {'hmac':>5} "
                     f"{'CPU µs/ev':>9} {'CPU/floor':>9} {'503':>5}  target")
        for (count_of_workers, _), one in result.measured.items():
            if count_of_workers != workers:
                continue
            if not one.valid:
                lines.append(f"{one.app.name:<38} not measured: {one.problems[0] if one.problems else 'no load'}")
                continue
            shares = f"{one.shares[0]:.2f}-{one.shares[-1]:.2f}" if one.shares else "-"
            rejected = sum(load.answered.rejected for load in one.valid)
            lines.append(f"{one.app.name:<38} {one.rate:>7.0f} {one.spread:>6.0%} {one.share:>6.2f} {shares:>9} "
                         f"{one.rate / peer.rate:>5.2f} {one.cpu_us:>9.0f} {one.cpu_share:>8.2f}x "
                         f"{rejected:>5}  {verdict(one.share, one.target)}")
    problems = [problem for one in result.measured.values() if one.valid for problem in one.problems]
    if problems:
        lines.append(f"loads left out of the medians ({len(problems)}): " + "; ".join(problems[:4]))
    counted = [load for one in result.measured.values() if one.app.whole for load in one.loads
               if load.tally is not None]
    if counted:
        good = sum(load.tally.ok for load in counted)
        lines.append(f"exactly once: {good} of {len(counted)} whole-path loads had each accepted delivery run "
                     "exactly once" + ("" if good == len(counted) else " (see the loads left out)"))
    noisy = [one for one in result.measured.values() if one.valid and one.spread > 0.3]
    if noisy:
        lines.append(f"note: {len(noisy)} rows' rates spread over 30 % between rounds (the most "
                     f"{max(one.spread for one in noisy):.0%}): something else was using the CPUs; the CPU/floor "
                     "column, which does not depend on the share of the CPUs the servers got, is steadier")
    lines.append("CPU = utime+stime of the gunicorn master and workers (for Celery also the worker's processes and "
                 "Redis), children included, over the load and its drain; the load generator's is not counted")
    lines += result.notes
    return "\n".join(lines)


def verdict(share: float, target: float | None) -> str:
    """``>= 0.75: within`` (or UNDER) when a target applies, else ``-``."""
    if target is None:
        return "-"
    return f">= {target}: {'within' if share >= target else 'UNDER'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loadgen", choices=("wrk", "python"), help="default: wrk when installed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="a load lasts about this long on the floor")
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKER_COUNTS))
    options = parser.parse_args()
    print(report(run(rounds=options.rounds, seconds=options.seconds, loadgen=options.loadgen,
                     workers=tuple(options.workers))))


if __name__ == "__main__":
    main()
