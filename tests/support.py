"""Helpers the tests share: waiting for background work, stopping server processes, and reading what
a Graph server received."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from bots import Bot
from bots.flask import make_app
from bots.signature import sign
from bots.testing import settings_for


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left (a container's init may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Served:
    """A bot served with the SQLite inbox; ``post`` delivers a signed body through the app."""

    def __init__(self, bot: Bot, graph_url: str, data_dir: str, **settings: str) -> None:
        env = {**settings_for(bot), "GRAPH_API_URL": graph_url, "DATA_DIR": data_dir, "GRAPH_RETRY_BASE_MS": "0",
               "GRAPH_RETRY_ATTEMPTS": "1", "INBOX_RETRY_BASE_MS": "20", "LOG_LEVEL": "WARNING", **settings}
        self.bot = bot
        self.secret = env[f"{bot.name.upper()}_APP_SECRET"]
        self.app = make_app([bot], env)
        self.client = self.app.test_client()
        self.inbox = self.app.extensions["bots"].inbox

    def post(self, body: dict):
        raw = json.dumps(body).encode()
        return self.client.post(f"/webhooks/{self.bot.name}", data=raw, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, self.secret)})

    def idle(self) -> bool:
        return self.inbox.pending == 0

    def close(self) -> None:
        self.inbox.shutdown(2)


def sent_texts(graph_server) -> list[str]:
    return [call["json"]["message"]["text"] for call in graph_server.calls
            if call["path"].endswith("me/messages") and "message" in (call["json"] or {})]


def terminate(process: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process's group (started with ``start_new_session``), then SIGKILL it if it is still
    there after ``grace`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
