"""The whole product as it runs: the example bots under gunicorn, answering through the emulator.

Real processes and real HTTP on loopback; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from bots.deliveries import Deliveries, batch
from bots.signature import sign

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
CREDENTIALS = {"HELPDESK_APP_SECRET": "e2e-secret-0123456789", "HELPDESK_ACCESS_TOKEN": "e2e-token-abcdefgh",
               "HELPDESK_VERIFY_TOKEN": "e2e-verify-token", "DOCS_APP_SECRET": "e2e-docs-secret-0123",
               "DOCS_ACCESS_TOKEN": "e2e-docs-token-abc", "DOCS_VERIFY_TOKEN": "e2e-docs-verify"}

DATA_DIR = tempfile.TemporaryDirectory(prefix="bots-e2e-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(url)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    full_env = {"PATH": os.environ["PATH"], "DOTENV": "0", "DATA_DIR": DATA_DIR.name, **CREDENTIALS, **env}
    return subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.stdout.read()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    port = free_port()
    db = tmp_path_factory.mktemp("emulator") / "emulator.sqlite3"
    process = start([sys.executable, "-m", "emulator", "--port", str(port), "--db", str(db)], {})
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/_emulator/calls", process)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def server(emulator):
    port = free_port()
    process = start([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                     "--worker-class", "gthread", "--graceful-timeout", "5"], {"GRAPH_API_URL": emulator})
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz", process)
    yield url, process
    stop(process)


def post(url: str, body: dict, secret: str = CREDENTIALS["HELPDESK_APP_SECRET"]) -> requests.Response:
    raw = json.dumps(body).encode()
    return requests.post(f"{url}/webhooks/helpdesk", data=raw, timeout=10,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, secret)})


def replies(emulator: str, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = requests.get(f"{emulator}/_emulator/calls", timeout=5).json()["calls"]
        if len(calls) >= count:
            return calls
        time.sleep(0.05)
    raise AssertionError(f"expected {count} calls at the emulator, got {len(calls)}")


def test_handshake_over_http(server):
    url, _ = server
    response = requests.get(f"{url}/webhooks/helpdesk", params={
        "hub.mode": "subscribe", "hub.verify_token": CREDENTIALS["HELPDESK_VERIFY_TOKEN"], "hub.challenge": "42"})
    assert (response.status_code, response.text) == (200, "42")


def test_a_message_is_answered_through_the_emulator(server, emulator):
    url, _ = server
    before = len(replies(emulator, 0))
    assert post(url, Deliveries().message("help")).status_code == 200
    call = replies(emulator, before + 1)[before]
    assert call["integration"] == "helpdesk"
    assert call["body"]["message"]["text"] == "What do you need?"


def test_a_batch_is_answered_in_order_per_person(server, emulator):
    url, _ = server
    before = len(replies(emulator, 0))
    people = [Deliveries(sender=f"10{n}") for n in range(5)]
    bodies = [person.message(text) for text in ("help", "access vpn", "x", "hi") for person in people]
    assert post(url, batch(*bodies)).json() == {"received": 20}
    calls = replies(emulator, before + 20)[before:]
    by_person: dict[str, list[str]] = {}
    for call in calls:
        by_person.setdefault(call["body"]["recipient"]["id"], []).append(call["body"]["message"]["text"][:10])
    assert len(by_person) == 5
    for texts in by_person.values():
        assert texts == ["What do yo", "Ticket HD-", "Sorry, I d", "What do yo"]


def test_refusals_over_http(server):
    url, _ = server
    assert post(url, Deliveries().message("help"), secret="not-the-secret").status_code == 403
    big = requests.post(f"{url}/webhooks/helpdesk", data=b"x" * (2 * 1024 * 1024), timeout=10)
    assert big.status_code == 413 and "error" in big.json()
    assert requests.put(f"{url}/webhooks/helpdesk", timeout=5).status_code == 405


def test_a_link_preview_is_answered_in_the_response_body_per_viewer(server):
    url, _ = server
    link = "https://docs.example.com/d/q3-plan"
    for viewer, privacy in [("100071234567890", "accessible"), ("100071234567899", "inaccessible")]:
        body = {"object": "link", "entry": [{"time": 1700000007, "changes": [{"field": "preview", "value": {
            "community": {"id": "987654321012345"}, "user": {"id": viewer}, "link": link}}]}]}
        raw = json.dumps(body).encode()
        response = requests.post(f"{url}/webhooks/docs", data=raw, timeout=10, headers={
            "X-Hub-Signature-256": sign(raw, CREDENTIALS["DOCS_APP_SECRET"])})
        assert response.status_code == 200
        assert response.json()["data"][0]["privacy"] == privacy


def test_sigterm_stops_the_server_cleanly(emulator):
    port = free_port()
    process = start([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                    {"GRAPH_API_URL": emulator})
    wait_for(f"http://127.0.0.1:{port}/healthz", process)
    output = stop(process)
    assert process.returncode == 0, output


def test_a_missing_setting_stops_gunicorn_with_one_line_naming_it():
    env = {"PATH": os.environ["PATH"], "DOTENV": "0", "BOTS": "helpdesk", "HELPDESK_ACCESS_TOKEN": "token-abcdefgh",
           "HELPDESK_VERIFY_TOKEN": "verify-token"}
    result = subprocess.run([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{free_port()}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: HELPDESK_APP_SECRET: is not set: copy it from the Admin Panel (Integrations > helpdesk) "
                      "into .env or the environment; .env.example lists every variable"]
    assert "Traceback" not in result.stderr
