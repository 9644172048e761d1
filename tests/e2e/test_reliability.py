"""The reliability suite: nothing accepted is lost and every effect happens once, with real processes.

A sender that behaves like Meta (retries each delivery until it gets a 200) streams signed events
to the echo bot under gunicorn; a Graph test server on loopback records every reply. The server is
killed with SIGKILL mid-stream, Graph fails and times out, batches are delivered three times, and a
handler fails until it is replayed. Each test prints its counts, and runs on both inboxes: the
embedded SQLite one, and Celery + Redis (a real redis-server and ``celery -A worker worker``
processes, killed along with gunicorn).

The Graph test server honours ``X-Idempotency-Key`` the way the emulator does (a repeat gets the
first answer and changes nothing) and counts such repeats separately as "retransmissions": the one
window no outbox can close against a server without idempotency is a crash after Graph has acted
and before the outbox has recorded it. A reply that reaches Graph twice under different keys (a
handler whose effects were committed twice) is a duplicate, and there must be none.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from flask import Flask, jsonify, request

from bots.deliveries import Deliveries, batch
from bots.signature import sign
from tests.e2e.test_gunicorn import free_port
from tests.support import terminate, wait_for

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
CELERY = Path(sys.executable).parent / "celery"
SECRET = "reliability-secret-0123"
ADMIN_TOKEN = "reliability-admin-token"
PERMANENT = {"error": {"message": "(#100) The recipient is not a valid user", "code": 100, "type": "OAuthException"}}


class GraphTestServer:
    """Records each Send API call; answers once per idempotency key; can fail, time out or refuse."""

    def __init__(self, serve) -> None:
        self.received: list[str] = []
        self.applied: Counter[str] = Counter()
        self.answers: dict[str, tuple] = {}
        self.retransmissions = 0
        self.fail_rate = self.timeout_rate = 0.0
        self.refuse = lambda text: False
        self.lock = threading.Lock()
        app = Flask("graph-test-server")
        app.add_url_rule("/me/messages", view_func=self._messages, methods=["POST"])
        self.url = serve(app)

    def _messages(self):
        body = request.get_json(silent=True) or {}
        text = (body.get("message") or {}).get("text", "")
        key = request.headers.get("X-Idempotency-Key")
        roll = random.random()
        if roll < self.timeout_rate:
            time.sleep(1.5)  # past the client's 1 s time-out: the bot sees no answer; nothing happens here
            return jsonify({"error": {"message": "too late", "code": 2}}), 503
        if roll < self.timeout_rate + self.fail_rate:
            if roll < self.timeout_rate + self.fail_rate / 2:
                return jsonify({"error": {"message": "Service temporarily unavailable", "code": 2}}), 503
            return jsonify({"error": {"message": "Calls to this api have exceeded the rate limit.", "code": 613}}), 400
        if self.refuse(text):
            return jsonify(PERMANENT), 400
        with self.lock:
            self.received.append(text)
            if key in self.answers:
                self.retransmissions += 1
                return jsonify(self.answers[key])
            self.applied[text] += 1
            self.answers[key] = {"recipient_id": "1", "message_id": f"m_{len(self.answers)}"}
            return jsonify(self.answers[key])

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.applied.values() if count > 1)


class EchoServer:
    """The echo bot under gunicorn (2 workers), started again after each kill on the same port and data;
    on Celery, with a Celery worker (2 processes) beside it, killed and started with it."""

    def __init__(self, graph_url: str, data_dir: Path, redis_url: str | None = None, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs_file = data_dir / "runs.txt"
        self.env = {"PATH": os.environ["PATH"], "DOTENV": "0", "GRAPH_API_URL": graph_url, "DATA_DIR": str(data_dir),
                    "ECHO_APP_SECRET": SECRET, "ECHO_ACCESS_TOKEN": "reliability-token", "ECHO_VERIFY_TOKEN":
                    "reliability-verify", "ADMIN_TOKEN": ADMIN_TOKEN, "RUNS_FILE": str(self.runs_file),
                    "GRAPH_TIMEOUT_SECONDS": "1", "GRAPH_RETRY_ATTEMPTS": "2", "GRAPH_RETRY_BASE_MS": "20",
                    "INBOX_RETRY_BASE_MS": "50", "INBOX_LEASE_SECONDS": "5", "OUTBOX_MAX_ATTEMPTS": "8",
                    "OUTBOX_THREADS": "8", "LOG_LEVEL": "ERROR", **settings}
        if redis_url:
            self.env.update(REDIS_URL=redis_url, INBOX="celery", HANDLERS="tests.e2e.reliability_bots")
        self.process: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.log = data_dir / "gunicorn.log"

    def start(self) -> None:
        factory = "app:create_app({'HANDLERS': 'tests.e2e.reliability_bots'})"
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [str(GUNICORN), factory, "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4",
                 "--worker-class", "gthread", "--graceful-timeout", "5"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if "REDIS_URL" in self.env:
                self.worker = subprocess.Popen(
                    [str(CELERY), "-A", "worker", "worker", "--concurrency", "2", "--loglevel", "warning",
                     "--without-mingle", "--without-gossip", "--hostname", f"reliability-{self.port}@%h"],
                    cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._up, timeout=30)

    def kill(self) -> None:
        """SIGKILL the masters and every worker at once: a machine losing power, as far as the processes see."""
        for process in (self.process, self.worker):
            if process is not None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop(self) -> None:
        for process in (self.process, self.worker):
            if process is not None:
                terminate(process)

    def admin(self, path: str, method: str = "GET") -> dict:
        return requests.request(method, f"{self.url}/admin/api/{path}", timeout=10,
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()

    def runs(self) -> int:
        return len(self.runs_file.read_text().splitlines()) if self.runs_file.exists() else 0

    def _up(self) -> bool:
        for process in (self.process, self.worker):
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False


class MetaSender:
    """Posts signed deliveries to the echo bot and, like Meta, retries each until it is answered 200."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/webhooks/echo"
        self.session = requests.Session()
        self.attempts = 0
        self.delivered = 0

    def deliver(self, body: dict) -> None:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, SECRET)}
        while True:
            self.attempts += 1
            try:
                if self.session.post(self.url, data=raw, headers=headers, timeout=5).status_code == 200:
                    self.delivered += 1
                    return
            except requests.RequestException:
                self.session = requests.Session()
            time.sleep(0.05)


@pytest.fixture
def graph(serve) -> GraphTestServer:
    return GraphTestServer(serve)


@pytest.fixture(params=["sqlite", "celery"])
def backend(request) -> str | None:
    """The inbox under test: None for the embedded SQLite one, else the Redis URL of the Celery one."""
    return request.getfixturevalue("redis_url") if request.param == "celery" else None


@pytest.fixture
def echo_server(graph, tmp_path, backend):
    servers: list[EchoServer] = []

    def start(**settings: str) -> EchoServer:
        servers.append(EchoServer(graph.url, tmp_path, backend, **settings))
        servers[-1].start()
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def messages(count: int, prefix: str = "") -> list[dict]:
    """``count`` messages from 25 people, so conversations interleave."""
    people = [Deliveries(sender=f"1000{n:03d}") for n in range(25)]
    return [people[n % 25].message(f"{prefix}{n}") for n in range(count)]


def report(name: str, backend: str | None, **counts: int) -> None:
    print(f"\n{name} ({'celery' if backend else 'sqlite'}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def test_killing_the_server_twice_mid_stream_loses_nothing_and_repeats_nothing(echo_server, graph, backend):
    server = echo_server()
    sender = MetaSender(server.url)
    stream = threading.Thread(target=lambda: [sender.deliver(body) for body in messages(1000)], daemon=True)
    stream.start()
    for at in (300, 650):
        wait_for(lambda at=at: sender.delivered >= at, timeout=60)
        server.kill()  # while the sender is posting and the workers are handling and sending
        server.start()
    stream.join(120)

    wait_for(lambda: len(graph.applied) == 1000, timeout=90)
    wait_for(lambda: server.admin("deadletters")["pending"] == 0, timeout=30)
    dead = server.admin("deadletters")["count"]
    report("crash", backend, sent=1000, deliveries_posted=sender.attempts, handler_runs=server.runs(),
           delivered=len(graph.applied), duplicates=graph.duplicates(), retransmissions=graph.retransmissions,
           dead_letters=dead)
    assert set(graph.applied) == {f"re:{n}" for n in range(1000)}
    assert graph.duplicates() == 0
    assert dead == 0


def test_graph_faults_deliver_every_reply_once_and_park_permanent_errors(echo_server, graph, backend):
    graph.fail_rate, graph.timeout_rate = 0.30, 0.10
    graph.refuse = lambda text: text.endswith("7")  # a permanent error for every tenth reply
    server = echo_server()
    sender = MetaSender(server.url)
    for body in messages(300):
        sender.deliver(body)

    expected = {f"re:{n}" for n in range(300) if not str(n).endswith("7")}
    wait_for(lambda: set(graph.applied) >= expected, timeout=120)
    letters = wait_for(lambda: (d := server.admin("deadletters"))["count"] == 30 and d["dead_letters"], timeout=60)
    report("graph faults", backend, sent=300, handler_runs=server.runs(), delivered=len(graph.applied),
           duplicates=graph.duplicates(), retransmissions=graph.retransmissions, dead_letters=len(letters))
    assert set(graph.applied) == expected
    assert graph.duplicates() == 0
    assert {letter["kind"] for letter in letters} == {"message"}
    assert all("(#100) The recipient is not a valid user" in letter["error"] for letter in letters)


def test_the_same_batches_delivered_three_times_run_each_handler_once(echo_server, graph, backend):
    server = echo_server()
    sender = MetaSender(server.url)
    events = messages(200)
    batches = [batch(*events[n:n + 10]) for n in range(0, 200, 10)]
    for _ in range(3):
        for body in batches:
            sender.deliver(body)

    wait_for(lambda: len(graph.applied) == 200, timeout=60)
    wait_for(lambda: server.admin("deadletters")["pending"] == 0, timeout=30)
    report("redelivery", backend, sent=600, handler_runs=server.runs(), delivered=len(graph.applied),
           duplicates=graph.duplicates(), dead_letters=server.admin("deadletters")["count"])
    assert server.runs() == 200
    assert graph.duplicates() == 0


def test_a_handler_that_raises_is_retried_then_parked_and_replay_runs_it_again(echo_server, graph, backend):
    server = echo_server(INBOX_MAX_ATTEMPTS="3")
    sender = MetaSender(server.url)
    sender.deliver(Deliveries().message("raise please"))
    sender.deliver(Deliveries().message("fine"))

    [letter] = wait_for(lambda: server.admin("deadletters")["dead_letters"], timeout=30)
    assert letter["attempts"] == 3 and letter["error"] == "RuntimeError: asked to fail on raise please"
    assert wait_for(lambda: graph.applied) == Counter({"re:fine": 1})
    runs_before = server.runs()

    assert server.admin(f"deadletters/{letter['id']}/replay", method="POST") == {"replayed": 1}
    wait_for(lambda: server.runs() > runs_before, timeout=30)
    report("handler failure", backend, sent=2, handler_runs=server.runs(), delivered=len(graph.applied),
           dead_letters=server.admin("deadletters")["count"])
    assert runs_before == 4  # three attempts at "raise please", one at "fine"
