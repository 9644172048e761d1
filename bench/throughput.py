"""HTTP throughput under gunicorn: the real app against the bare floor, same settings, same load.

Every app is served by its own ``gunicorn`` with the Procfile's settings on a free loopback port.
In each round the apps are loaded one after the other (a short warm-up, then a timed load with
signed deliveries), and each app's median round is compared with the floor's (``bench/floor.py``):
the machine's drift and a neighbour's burst then hit every app alike. The real app is served in
three forms (``bench/wsgi_real.py``): its request path alone, and whole, with handlers running in
its own thread pool as in production, their replies either answered by Graph or all failing. A
fourth app answers link previews (the documents bot); its load repeats one viewer's request for one
document, so after the warm-up every answer is a cache hit.

Every delivery is distinct (fresh message id), so no handler is skipped as a redelivery. When the
handlers cannot keep up, the app's short handler queue fills and it answers 503 (back-pressure);
those do not count as accepted, so a full app's rate is the rate its handlers keep up with, paying
for the refusals too, as it would when Workplace delivers faster than it can handle.

Load comes from ``wrk`` when it is installed, else from a few Python processes with keep-alive
connections, which are much slower and so flatter every app against the floor.

(The module is not called ``http.py``: ``python bench/run.py`` puts ``bench/`` first on
``sys.path``, where that name would hide the standard library's ``http``.)

Run alone: ``.venv/bin/python -m bench.throughput [--loadgen wrk|python] [--rounds 5] [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from urllib.parse import urlsplit

from bench.payloads import DEAD_GRAPH_URL, PATH, PREVIEW_PATH, Signed, message_stream, preview

ROOT = Path(__file__).resolve().parents[1]
PREVIEW_APP = "preview, cache hit"
GUNICORN = Path(sys.executable).parent / "gunicorn"
#: The Procfile's web process, without the access log and the control socket; every app gets exactly these.
GUNICORN_SETTINGS = ("--workers", "2", "--worker-class", "gthread", "--threads", "4", "--graceful-timeout", "5",
                     "--no-control-socket")
#: What is served, floor first: the bare endpoint, the hand-written HMAC receiver (what no framework
#: can beat: signature and JSON only), the request path alone (queued in memory, or appended
#: to the durable inbox), the whole app with its handlers whose replies Graph answers, and the same with
#: every reply failing (see ``bench/wsgi_real.py``).
APPS = {"floor": "bench.floor:app", "HMAC receiver": "bench.peer_hmac:app",
        "ingest only": "bench.wsgi_real:ingest_only",
        "ingest, durable": "bench.wsgi_real:durable",
        "full, Graph ok": "bench.wsgi_real:answered", "full, Graph dead": "bench.wsgi_real:app",
        PREVIEW_APP: "bench.wsgi_real:previews"}
CELERY_APP = "ingest, Celery"
CELERY_BACKLOG_APP = "ingest, Celery, backlog"
#: With ``BENCH_REDIS_URL`` set (``make bench`` starts a Redis), the scaled-out web process too: each
#: delivery from someone new, so each wakes a worker with a Celery task (the usual case, workers
#: keeping up), and from 1,000 people whose conversations already wait, so none needs a task.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
if REDIS_URL:
    APPS[CELERY_APP] = APPS[CELERY_BACKLOG_APP] = "bench.wsgi_real:celery"
#: Where each app's deliveries go when not to ``PATH``.
PATHS = {PREVIEW_APP: PREVIEW_PATH}
LUA = Path(__file__).with_name("post.lua")
WRK_THREADS, WRK_CONNECTIONS = 2, 16
PYTHON_CLIENTS = 4


@dataclass(frozen=True)
class Load:
    """What one timed load produced: answers, over how long, how many were 503 (back-pressure) or failed."""

    requests: int
    seconds: float
    rejected: int = 0
    failed: int = 0  # other non-2xx answers, and socket errors

    @property
    def accepted(self) -> int:
        return self.requests - self.rejected - self.failed

    @property
    def rate(self) -> float:
        """Accepted deliveries per second. Under back-pressure the handler queue is full at both ends
        of the load, so this is also the rate at which handlers keep up."""
        return self.accepted / self.seconds


#: Loads ``url`` at a path with the deliveries in a pool file for some seconds.
LoadGenerator = Callable[[str, str, Path, float], Load]


@dataclass(frozen=True)
class Measured:
    """One app's loads, one a round, and the longest its handler backlog took to drain after one."""

    app: str
    loads: list[Load]
    drain_seconds: float

    @property
    def load(self) -> Load:
        """The round with the median rate."""
        return sorted(self.loads, key=lambda load: load.rate)[len(self.loads) // 2]

    @property
    def spread(self) -> float:
        """Highest rate less lowest, as a share of the median: how noisy the rounds were."""
        rates = [load.rate for load in self.loads]
        return (max(rates) - min(rates)) / self.load.rate


@dataclass(frozen=True)
class Result:
    """Every app's measurement, the floor's first, and how the load was made."""

    generator: str
    runs: list[Measured]
    handled: dict[str, int]  # events each full app's handlers ran for, warm-ups included

    @property
    def floor(self) -> Load:
        return self.runs[0].load


@dataclass
class Pools:
    """Pool files of signed deliveries: one reused where repeats do not matter, a fresh one for each
    load of an app whose handlers run, sized from the floor's rate, the fastest there is."""

    folder: Path
    stream: Iterator[Signed]
    strangers: Iterator[Signed]
    floor_rate: float = 0.0
    made: int = 0

    def reused(self) -> Path:
        path = self.folder / "reused.pool"
        return path if path.exists() else write_pool(path, self.stream, 5000)

    def repeated_preview(self) -> Path:
        """One viewer's preview request for one document, many times: every answer after the first is a cache hit."""
        path = self.folder / "preview.pool"
        return path if path.exists() else write_pool(path, repeat(preview()), 100)

    def fresh(self, seconds: float, strangers: bool = False) -> Path:
        """New messages for ``seconds`` at the floor's rate; with ``strangers``, each from someone new."""
        self.made += 1
        return write_pool(self.folder / f"{self.made}.pool", self.strangers if strangers else self.stream,
                          int(self.floor_rate * seconds * 1.3) + 1000)


def free_port() -> int:
    """A loopback port nobody is bound to right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_graph_is_dead() -> None:
    """The real app's Graph calls must fail at once: nothing may listen where they go."""
    parts = urlsplit(DEAD_GRAPH_URL)
    with socket.socket() as sock:
        if sock.connect_ex((parts.hostname, parts.port)) == 0:
            raise RuntimeError(f"something listens on {DEAD_GRAPH_URL}; the bench needs that port closed")


def flush_redis() -> None:
    """Empty the bench's Redis database, so the Celery app starts with no lanes, keys or tasks."""
    if REDIS_URL:
        import redis
        redis.Redis.from_url(REDIS_URL).flushdb()


def write_pool(path: Path, deliveries: Iterator[Signed], count: int) -> Path:
    """Write ``count`` deliveries, one a line as ``<signature> <body>``, for wrk or the Python clients."""
    with path.open("wb") as out:
        for delivery in islice(deliveries, count):
            out.write(delivery.signature.encode() + b" " + delivery.body + b"\n")
    return path


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


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Block until the server answers any HTTP request; raise if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before serving")
        try:
            http_get(url, "/")
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"gunicorn did not answer at {url} within {timeout} s")


@contextmanager
def serve(module: str, log: Path) -> Iterator[str]:
    """Run ``gunicorn module`` with the bench settings on a free port; its output goes to ``log``, and
    the real app's store to the folder ``log`` is in."""
    url = f"http://127.0.0.1:{free_port()}"
    args = [str(GUNICORN), module, "--bind", urlsplit(url).netloc, *GUNICORN_SETTINGS]
    env = {"PATH": os.environ.get("PATH", ""), "DOTENV": "0", "BENCH_DATA_DIR": str(log.parent),
           "BENCH_REDIS_URL": REDIS_URL}
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(url, process)
            yield url
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if gunicorn is still there after its graceful time-out."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk_load(url: str, path: str, pool: Path, seconds: float) -> Load:
    """Load with wrk and ``post.lua``, which also counts the 503 answers."""
    args = ["wrk", "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{max(1, round(seconds))}s",
            "-s", str(LUA), url + path, "--", str(pool), str(WRK_THREADS)]
    output = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> Load:
    """Answers, duration, 503s and failures from wrk's summary and ``post.lua``'s line."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    if done is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[done.group(3)]
    non_2xx = _count(r"Non-2xx or 3xx responses: (\d+)", output)
    rejected = _count(r"Rejected with 503: (\d+)", output)
    socket_errors = _count(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Load(int(done.group(1)), float(done.group(2)) * scale, rejected, non_2xx - rejected + socket_errors)


def _count(pattern: str, output: str) -> int:
    """The sum of the numbers ``pattern`` captures in ``output``; 0 when the line is absent."""
    found = re.search(pattern, output)
    return sum(map(int, found.groups())) if found else 0


def python_load(url: str, path: str, pool: Path, seconds: float) -> Load:
    """Load with ``PYTHON_CLIENTS`` processes, one keep-alive connection each, starting together."""
    start_at = time.time() + 0.5
    jobs = [(url, path, str(pool), index, PYTHON_CLIENTS, start_at, seconds) for index in range(PYTHON_CLIENTS)]
    with multiprocessing.get_context("fork").Pool(PYTHON_CLIENTS) as clients:
        counts = clients.starmap(_client, jobs)
    return Load(sum(map(sum, counts)), seconds, sum(c[1] for c in counts), sum(c[2] for c in counts))


def _client(url: str, path: str, pool: str, index: int, stride: int, start_at: float, seconds: float
            ) -> tuple[int, int, int]:
    """One client process: POST its share of the pool in turn until time is up; count 2xx, 503 and the rest."""
    lines = Path(pool).read_bytes().splitlines()[index::stride]
    requests = [(body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig.decode()})
                for sig, body in (line.split(b" ", 1) for line in lines)]
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    counts = {"ok": 0, "rejected": 0, "failed": 0}
    time.sleep(max(0.0, start_at - time.time()))
    deadline, n = start_at + seconds, 0
    while time.time() < deadline:
        body, headers = requests[n % len(requests)]
        n += 1
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
        except OSError:
            counts["failed"] += 1
            connection.close()
            continue
        counts["ok" if 200 <= response.status < 300 else "rejected" if response.status == 503 else "failed"] += 1
    connection.close()
    return counts["ok"], counts["rejected"], counts["failed"]


def pick_generator(name: str | None) -> tuple[str, LoadGenerator]:
    """``wrk`` when installed (or asked for), else the Python clients."""
    if name == "python" or (name is None and shutil.which("wrk") is None):
        return f"python ({PYTHON_CLIENTS} processes, keep-alive)", python_load
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk, or use --loadgen python")
    return f"wrk (-t{WRK_THREADS} -c{WRK_CONNECTIONS})", wrk_load


def drain(url: str, timeout: float = 30.0) -> float:
    """Seconds until no worker has pending handler jobs: the first of six idle ``/healthz`` answers in a
    row, as each lands on either worker."""
    started = time.monotonic()
    idle_since, idle_answers = started, 0
    while idle_answers < 6 and time.monotonic() - started < timeout:
        status, body = http_get(url, "/healthz")
        if status == 200 and b'"pending":0' in body.replace(b" ", b""):
            idle_since = idle_since if idle_answers else time.monotonic()
            idle_answers += 1
        else:
            idle_answers = 0
        time.sleep(0.05)
    return (idle_since if idle_answers >= 6 else time.monotonic()) - started


def handled_events(log: Path) -> int:
    """Events the helpdesk handlers ran for: its timing middleware logs one line per event."""
    return sum(1 for line in log.read_text(errors="replace").splitlines() if " took " in line)


def log_name(app: str) -> str:
    """The file name of ``app``'s gunicorn log."""
    return re.sub(r"\W+", "-", app) + ".log"


def load_once(app: str, url: str, pools: Pools, generator: LoadGenerator, *, seconds: float,
              warmup: float) -> tuple[Load, float]:
    """Warm ``app`` up, time one load, and wait for its handler backlog to drain, so that its handlers
    do not steal the next app's CPU; return the load and the drain time."""
    handlers_run = app.startswith("full")
    fresh = handlers_run or app.startswith(CELERY_APP)  # Redis drops a repeated message id as a redelivery
    if fresh:
        strangers = app == CELERY_APP
        warm_pool, pool = pools.fresh(warmup, strangers), pools.fresh(seconds, strangers)
    else:
        warm_pool = pool = pools.repeated_preview() if app == PREVIEW_APP else pools.reused()
    path = PATHS.get(app, PATH)
    generator(url, path, warm_pool, warmup)
    load = generator(url, path, pool, seconds)
    if fresh:
        warm_pool.unlink()
        pool.unlink()
    return load, drain(url) if handlers_run else 0.0


def run(*, rounds: int = 5, seconds: float = 2.0, warmup: float = 1.0, loadgen: str | None = None) -> Result:
    """Serve every app at once; in each round load them one after the other; keep each one's median
    round, so drift and a neighbour's burst hit every app alike."""
    name, generator = pick_generator(loadgen)
    check_graph_is_dead()
    flush_redis()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, ExitStack() as servers:
        folder = Path(tmp)
        urls = {app: servers.enter_context(serve(module, folder / log_name(app))) for app, module in APPS.items()}
        pools = Pools(folder, message_stream(), message_stream(people=10**10))
        loads: dict[str, list[Load]] = {app: [] for app in APPS}
        drains: dict[str, float] = dict.fromkeys(APPS, 0.0)
        for _ in range(rounds):
            for app, url in urls.items():
                load, drained = load_once(app, url, pools, generator, seconds=seconds, warmup=warmup)
                loads[app].append(load)
                drains[app] = max(drains[app], drained)
                pools.floor_rate = max(pools.floor_rate, loads["floor"][-1].requests / seconds)
        handled = {app: handled_events(folder / log_name(app)) for app in APPS if app.startswith("full")}
    return Result(name, [Measured(app, loads[app], drains[app]) for app in APPS], handled)


def report(result: Result) -> str:
    """Each app's median rate and its ratio to the floor's, and whatever makes the figures doubtful."""
    lines = [f"HTTP under gunicorn {' '.join(GUNICORN_SETTINGS)}; load: {result.generator}; "
             f"median of {len(result.runs[0].loads)} rounds",
             f"{'app':<23} {'answers':>8} {'503':>6} {'failed':>6} {'accepted/s':>10} {'spread':>6} {'of floor':>8} "
             f"{'cost':>6} {'drain s':>7}"]
    for run in result.runs:
        load, share = run.load, run.load.rate / result.floor.rate
        lines.append(f"{run.app:<23} {load.requests:>8} {load.rejected:>6} {load.failed:>6} {load.rate:>10.0f} "
                     f"{run.spread:>6.0%} {share:>8.2f} {1 / share:>5.2f}x {run.drain_seconds:>7.1f}")
    handled = ", ".join(f"{app} {count}" for app, count in result.handled.items())
    lines.append(f"events the handlers ran for, warm-ups included: {handled}")
    lines.append("503 = handler queue full (back-pressure); accepted/s = 2xx answers per second; spread = "
                 "(max - min) / median over the rounds; drain = longest wait after a load until no job was pending")
    filling = [run.app for run in result.runs if run.drain_seconds > 0.25 * run.load.seconds and not run.load.rejected]
    if filling:
        lines.append(f"note: {', '.join(filling)}: the handler queue was still filling (long drain, no 503): "
                     "accepted/s overstates what the handlers kept up with; load longer or harder (wrk)")
    if any(load.failed for run in result.runs for load in run.loads):
        lines.append("note: some answers failed or were neither 2xx nor 503: the figures are not comparable")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loadgen", choices=("wrk", "python"), help="default: wrk when installed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed load per app and round")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed load before each timed one")
    options = parser.parse_args()
    print(report(run(rounds=options.rounds, seconds=options.seconds, warmup=options.warmup, loadgen=options.loadgen)))


if __name__ == "__main__":
    main()
