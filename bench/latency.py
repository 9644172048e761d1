"""Event-to-reply latency at a steady 100 events/s: webhook in -> the reply's request at a Graph test server.

The helpdesk bot runs under gunicorn with the Procfile's settings and the durable inbox (append,
handler thread, outbox, sender thread, Graph client); each event is ``access bench-<n>``, whose
reply names ``bench-<n>``, so every reply is matched to its event. Every delivery is distinct (one
message id each, 200 senders in turn), so none is dropped as a redelivery. Next to it, in the same
run and at the same pace, the round trip of a POST to the bare Flask floor (request out -> answer
back): the least any HTTP hop costs here. Target: the reply's p99 at most 20 ms.

Run alone: ``.venv/bin/python -m bench.latency [--rate 100] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bench import throughput
from bench.payloads import PATH, message, sender_id
from bots.deliveries import Deliveries

REPLY = re.compile(rb"access to bench-(\d+) was requested")
TARGET_P99_MS = 20.0
#: The Procfile's web process, without the access log and the control socket.
GUNICORN_SETTINGS = ("--workers", "2", "--worker-class", "gthread", "--threads", "4", "--graceful-timeout", "5",
                     "--no-control-socket")


@dataclass(frozen=True)
class Latency:
    """Milliseconds at the 50th and 99th percentile over ``count`` events."""

    name: str
    count: int
    p50: float
    p99: float
    lost: int = 0
    slow: str = ""  # the events over the target: how many, the longest, when in the run they were sent

    def line(self) -> str:
        lost = f", {self.lost} never arrived" if self.lost else ""
        slow = f"; {self.slow}" if self.slow else ""
        return f"{self.name:<44} p50 {self.p50:6.1f} ms   p99 {self.p99:6.1f} ms   ({self.count} events{lost}{slow})"


class GraphRecorder:
    """A Send API on loopback that notes when each bench reply arrives and answers success."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.arrived: dict[int, float] = {}
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def _app(self, request: Request) -> Response:
        found = REPLY.search(request.get_data())
        if found:
            self.arrived.setdefault(int(found.group(1)), time.perf_counter())
        return Response(b'{"recipient_id": "1", "message_id": "m_bench"}', content_type="application/json")

    def close(self) -> None:
        self.server.shutdown()


def paced(url: str, rate: float, seconds: float, body_for) -> dict[int, tuple[float, float]]:
    """POST ``body_for(n)`` at ``rate`` per second on one keep-alive connection; per n: (sent, answered)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    times: dict[int, tuple[float, float]] = {}
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        delivery = body_for(n)
        sent = time.perf_counter()
        connection.request("POST", PATH, body=delivery.body, headers=delivery.headers)
        response = connection.getresponse()
        answer = response.read()
        times[n] = (sent, time.perf_counter())
        if response.status != 200:
            raise throughput.NotFinished(f"{url} answered {response.status} {answer[:200]!r} to delivery {n}")
    connection.close()
    return times


@contextmanager
def serve(module: str, log: Path, recorder_url: str) -> Iterator[str]:
    """``gunicorn module`` with the Procfile's settings."""
    url = f"http://127.0.0.1:{throughput.free_port()}"
    args = [str(throughput.GUNICORN), module, "--bind", urlsplit(url).netloc, *GUNICORN_SETTINGS]
    env = {"PATH": os.environ.get("PATH", ""), "DOTENV": "0", "BENCH_DATA_DIR": str(log.parent),
           "BENCH_GRAPH_URL": recorder_url}
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=throughput.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            throughput.wait_until_serving(url, process, log)
            yield url
        finally:
            throughput.terminate(process)


def percentiles(name: str, values: list[float], lost: int = 0, sent_at: list[float] | None = None) -> Latency:
    """p50 and p99 of ``values`` (ms); with ``sent_at`` (seconds into the run, one per value), which of them were
    over the target and when: a stall of the machine shows as one short span, lost wake-ups as many."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    slow = ""
    if sent_at is not None:
        over = sorted(at for at, value in zip(sent_at, values, strict=True) if value > TARGET_P99_MS)
        if over:
            slow = (f"{len(over)} over {TARGET_P99_MS:.0f} ms, the longest {max(values):.0f} ms, sent "
                    f"{over[0]:.2f}-{over[-1]:.2f} s into the run")
    return Latency(name, len(values), statistics.median(values), cuts[98], lost, slow)


def run(rate: float = 100.0, seconds: float = 10.0, warmup: float = 1.0) -> list[Latency]:
    """The floor's round trip and the bot's event-to-reply latency, at the same pace."""
    build = Deliveries()  # one builder: each message gets a message id of its own
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        with serve("bench.floor:app", Path(folder) / "floor.log", recorder_url="") as url:
            paced(url, rate, warmup, lambda n: message(build, sender=sender_id(n % 200)))
            floor = paced(url, rate, seconds, lambda n: message(build, sender=sender_id(n % 200)))
        recorder = GraphRecorder()
        try:
            with serve("bench.wsgi_latency:app", Path(folder) / "bots.log", recorder.url) as url:
                paced(url, rate, warmup, lambda n: message(build, f"access bench-{-n - 1}", sender=sender_id(n)))
                recorder.arrived.clear()
                sent = paced(url, rate, seconds, lambda n: message(build, f"access bench-{n}",
                                                                   sender=sender_id(n % 200)))
                deadline = time.monotonic() + 10
                while len(recorder.arrived) < len(sent) and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            recorder.close()
    if not recorder.arrived:
        raise throughput.NotFinished(f"no reply reached the Graph test server within 10 s of the last of "
                                     f"{len(sent)} deliveries")
    floor_ms = [(answered - out) * 1000 for out, answered in floor.values()]
    start = min(out for out, _ in sent.values())
    replied = [(out, recorder.arrived[n]) for n, (out, _) in sent.items() if n in recorder.arrived]
    reply_ms = [(arrived - out) * 1000 for out, arrived in replied]
    answer_ms = [(answered - out) * 1000 for out, answered in sent.values()]
    return [percentiles("bare Flask floor, POST round trip", floor_ms),
            percentiles("bots, webhook POST round trip (the 200)", answer_ms),
            percentiles("bots, webhook in -> reply at Graph", reply_ms, lost=len(sent) - len(reply_ms),
                        sent_at=[out - start for out, _ in replied])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for row in run(args.rate, args.seconds):
        print(row.line())


if __name__ == "__main__":
    main()
