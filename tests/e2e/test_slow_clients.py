"""Slow clients cannot hold up a delivery in the production deployment.

The real stack on loopback: gunicorn as the Procfile runs it (gthread, 2 workers x 4 threads)
behind nginx as ``deploy/nginx.conf.template`` configures it (``scripts/nginx.sh run``). Fifty
clients send their headers or body a byte at a time, or stop half-way, and stay connected for 10 s;
meanwhile a signed delivery through nginx is answered within a second. The same clients aimed
straight at a gunicorn worker hold all its threads, and the delivery waits: that is what nginx is for.

``pytest -s tests/e2e/test_slow_clients.py`` prints the answer times.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from bots.deliveries import Deliveries
from bots.signature import sign
from tests.e2e.test_gunicorn import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
NGINX_SCRIPT = ROOT / "scripts" / "nginx.sh"
CREDENTIALS = {"HELPDESK_APP_SECRET": "slow-secret-0123456789", "HELPDESK_ACCESS_TOKEN": "slow-token-abcdefgh",
               "HELPDESK_VERIFY_TOKEN": "slow-verify-token-42", "DOCS_APP_SECRET": "slow-docs-secret-0123",
               "DOCS_ACCESS_TOKEN": "slow-docs-token-abc", "DOCS_VERIFY_TOKEN": "slow-docs-verify-7"}
SLOW_CLIENTS = 50
HOLD_SECONDS = 10.0
# A delivery's headers: Content-Length promises a body the slow clients never finish.
HEAD = (b"POST /webhooks/helpdesk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it is still there after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def nginx_installed() -> None:
    """Debian's nginx, installed by scripts/nginx.sh when missing (``make test`` does it first)."""
    if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
        return
    result = subprocess.run(["bash", str(NGINX_SCRIPT), "install"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"nginx could not be installed: {result.stderr.strip()}")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Logs, data and nginx's files; under /tmp so nginx's www-data workers can reach its temp dir."""
    path = Path(tempfile.mkdtemp(prefix="bots-slow-clients-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def gunicorn_serving(directory: Path, workers: int) -> Iterator[str]:
    """The example bots under gunicorn with the Procfile's thread settings; Graph is unreachable.
    No control socket: every gunicorn on the machine would share its one default path."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "DOTENV": "0", "DATA_DIR": str(directory / "data"),
           "GRAPH_API_URL": f"http://127.0.0.1:{free_port()}", **CREDENTIALS}
    args = [str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "4",
            "--worker-class", "gthread", "--access-logfile", "-", "--graceful-timeout", "5", "--no-control-socket"]
    directory.mkdir(exist_ok=True)
    with open(directory / "gunicorn.log", "w") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz", process)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def gunicorn(workdir: Path) -> Iterator[str]:
    """gunicorn as the Procfile runs it: two workers of four threads."""
    with gunicorn_serving(workdir / "procfile", workers=2) as url:
        yield url


@contextmanager
def nginx_in_front_of(upstream: str, directory: Path) -> Iterator[str]:
    """``scripts/nginx.sh run`` on a free port, proxying to ``upstream``; its files in ``directory``."""
    port = free_port()
    upstream_address = upstream.removeprefix("http://")
    with open(directory.with_suffix(".out"), "w") as out:
        process = subprocess.Popen(["bash", str(NGINX_SCRIPT), "run", f"127.0.0.1:{port}", upstream_address,
                                    str(directory)], stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz", process)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def nginx(nginx_installed: None, gunicorn: str, workdir: Path) -> Iterator[tuple[str, Path]]:
    """The production deployment: nginx in front of the gunicorn above; (url, nginx's directory)."""
    directory = workdir / "nginx"
    with nginx_in_front_of(gunicorn, directory) as url:
        yield url, directory


class SlowClients:
    """Connections that never finish their request, in four kinds taking turns.

    headers stalled: part of the request line, then nothing; headers trickled: a byte a second of
    the headers; body trickled: full headers, then a byte of body a second; body stalled: headers
    and a few bytes of body, then nothing. None of them ever sends its whole request.
    """

    def __init__(self, url: str, count: int = SLOW_CLIENTS) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.count = count
        self.sockets: list[socket.socket] = []
        self.trickles: dict[socket.socket, bytes] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowClients:
        openings = [(HEAD[:30], b""), (HEAD[:10], HEAD[10:]), (HEAD + b"{", b" " * 999), (HEAD + b'{"object"', b"")]
        for n in range(self.count):
            sent, rest = openings[n % len(openings)]
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(sent)
            self.sockets.append(sock)
            if rest:
                self.trickles[sock] = rest
        self.thread.start()
        return self

    def _trickle(self) -> None:
        """Every second, one more byte from each trickling client; a closed one drops out."""
        while not self.stopped.wait(1.0):
            for sock, rest in list(self.trickles.items()):
                try:
                    sock.send(rest[:1])
                    self.trickles[sock] = rest[1:]
                except OSError:
                    del self.trickles[sock]

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def deliver(url: str, timeout: float = 10) -> float:
    """POST a signed helpdesk message; the seconds until its 200 (a fresh connection each time)."""
    raw = json.dumps(Deliveries().message("help")).encode()
    headers = {"Content-Type": "application/json",
               "X-Hub-Signature-256": sign(raw, CREDENTIALS["HELPDESK_APP_SECRET"])}
    started = time.monotonic()
    response = requests.post(f"{url}/webhooks/helpdesk", data=raw, headers=headers, timeout=timeout)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    return elapsed


def access_log(directory: Path, until_status: int | None = None, timeout: float = 5) -> list[dict]:
    """nginx's access log, once its last line has ``until_status`` if one is given (a refused body is
    logged when nginx has finished reading and discarding it, a moment after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in (directory / "logs" / "access.log").read_text().splitlines()]
        if until_status is None or (lines and lines[-1]["status"] == until_status) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_delivery_through_nginx_is_answered_within_a_second_while_50_slow_clients_hold_on(nginx):
    url, _ = nginx
    deliver(url)  # warm up: the app is built on first use
    times = []
    with SlowClients(url) as clients:
        started = time.monotonic()
        for at in (1, 3, 5, 7, 9):
            time.sleep(max(0.0, started + at - time.monotonic()))
            times.append(deliver(url))
        assert len(clients.trickles) == SLOW_CLIENTS // 2  # every trickling client is still connected
        time.sleep(max(0.0, started + HOLD_SECONDS - time.monotonic()))
    print(f"\nthrough nginx, {SLOW_CLIENTS} slow clients held {HOLD_SECONDS:.0f} s: "
          f"answers in {', '.join(f'{t * 1000:.0f}' for t in times)} ms, max {max(times) * 1000:.0f} ms")
    assert max(times) < 1.0


def test_the_access_log_has_the_handshake_path_but_never_the_verify_token(nginx):
    url, directory = nginx
    token = CREDENTIALS["HELPDESK_VERIFY_TOKEN"]
    earlier = len(access_log(directory))
    response = requests.get(f"{url}/webhooks/helpdesk", timeout=5,
                            params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "123"})
    assert (response.status_code, response.text) == (200, "123")
    refused = requests.post(f"{url}/webhooks/helpdesk?hub.verify_token={token}", data=b"x" * (2 * 1024 * 1024),
                            timeout=10)
    assert refused.status_code == 413
    # Other tests' slow clients are logged when nginx closes them, which may fall in between.
    lines = [line for line in access_log(directory, until_status=413)[earlier:] if line["upstream_seconds"] or
             line["status"] == 413]
    assert len(lines) == 2
    assert {"method": "GET", "path": "/webhooks/helpdesk", "status": 200}.items() <= lines[0].items()
    assert {"method": "POST", "path": "/webhooks/helpdesk", "status": 413}.items() <= lines[1].items()
    for log in ("access.log", "error.log"):
        assert token not in (directory / "logs" / log).read_text()


def test_nginx_refuses_in_the_apps_json_shape(nginx):
    url, _ = nginx
    too_big = requests.post(f"{url}/webhooks/helpdesk", data=b"x" * (1024 * 1024 + 1), timeout=10)
    assert too_big.status_code == 413
    assert too_big.json() == {"error": {"message": "body is larger than 1048576 bytes"}}
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 400") and answer.endswith('{"error": {"message": "bad request"}}\n')


def test_a_body_of_webhook_max_bytes_passes_nginx_to_the_app(nginx):
    url, _ = nginx
    response = requests.post(f"{url}/webhooks/helpdesk", data=b"x" * (1024 * 1024), timeout=10)
    assert response.status_code == 403  # the app's answer (no signature): nginx let the whole body through
    assert response.json()["error"]["field"] == "X-Hub-Signature"


def test_nginx_answers_502_in_json_when_gunicorn_is_down(nginx_installed, workdir):
    with nginx_in_front_of(f"127.0.0.1:{free_port()}", workdir / "nginx-no-upstream") as url:
        response = requests.post(f"{url}/webhooks/helpdesk", data=b"{}", timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": {"message": "the bot server is not answering"}}


def test_without_nginx_the_same_slow_clients_hold_a_delivery_back(workdir):
    """The control: straight at a gunicorn worker, the slow clients pin its four threads until they
    leave. One worker, because with two the kernel may hand nearly every slow client to one of them
    (all fifty in four of eight runs here), and a delivery the other accepts goes through."""
    with gunicorn_serving(workdir / "one-worker", workers=1) as url, ThreadPoolExecutor(1) as pool:
        deliver(url)
        with SlowClients(url):
            started = time.monotonic()
            time.sleep(1)
            answer = pool.submit(deliver, url, 30)
            time.sleep(max(0.0, started + HOLD_SECONDS - time.monotonic()))
            assert not answer.done()
        waited = answer.result()
    print(f"\nstraight at gunicorn, {SLOW_CLIENTS} slow clients held {HOLD_SECONDS:.0f} s: the delivery sent at 1 s "
          f"was answered after {waited:.1f} s, once they had gone")
    assert waited > 2.0
