"""A Graph API stand-in on loopback for ``bench/soak.py``: answers the Send API and notes every reply.

A ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, ``TCP_NODELAY``) in a process of its own, so the
harness's bookkeeping never delays an answer and its CPU is countable on its own. Every
``POST .../me/messages`` is answered ``{"recipient_id": ..., "message_id": "m_reply_<n>"}`` at once;
what it heard is written, one ``write`` per line on ``O_APPEND`` files in its folder:

- ``graph.runs``: ``<mid> <time.time()>`` per call whose text is ``bench.replying_bot``'s reply
  (``?`` when the text names no message), the format ``bench.accounting.RunFiles`` reads, so the
  harness counts replies per delivery as it counts handler runs;
- ``keys.log``: ``<mid> <X-Idempotency-Key>`` per call, read only to explain a repeated reply (the
  same key again: one effect retried; a new key: the reply was made twice);
- ``other.log``: ``<method> <path>`` of any other call (answered ``{}``), which the soak reports.

Nothing is kept in memory per call, so a 30-minute soak does not grow the stand-in.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.accounting import RunFiles
from bench.replying_bot import REPLY_PREFIX

RUNS_FILE, KEYS_FILE, OTHER_FILE = "graph.runs", "keys.log", "other.log"


class _Handler(BaseHTTPRequestHandler):
    """One connection of a bot's Graph session: answers each request as Graph's Send API would."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?", 1)[0].endswith("/me/messages"):
            self._answer({"recipient_id": "1", "message_id": self.server.note(body, self.headers)})
        else:
            self.server.other(f"POST {self.path.split('?', 1)[0]}")
            self._answer({})

    def do_GET(self) -> None:
        self.server.other(f"GET {self.path.split('?', 1)[0]}")
        self._answer({})

    def _answer(self, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per call would be the soak's biggest cost."""


class _Server(ThreadingHTTPServer):
    """The listening socket, bound by the harness; the record files are opened in the serving process."""

    daemon_threads = True

    def open(self, folder: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self.fds = {name: os.open(folder / name, flags, 0o644) for name in (RUNS_FILE, KEYS_FILE, OTHER_FILE)}
        self.numbers = itertools.count(1)

    def note(self, body: bytes, headers) -> str:
        """Record one Send API call (which delivery it answers, when, its key); the new message's id."""
        arrived = time.time()
        mid = reply_mid(body)
        os.write(self.fds[RUNS_FILE], f"{mid} {arrived:.6f}\n".encode())
        os.write(self.fds[KEYS_FILE], f"{mid} {headers.get('X-Idempotency-Key') or '-'}\n".encode())
        return f"m_reply_{next(self.numbers)}"

    def other(self, what: str) -> None:
        os.write(self.fds[OTHER_FILE], f"{what}\n".encode())


def reply_mid(body: bytes) -> str:
    """The message id a reply's text names, or ``?``."""
    try:
        text = json.loads(body)["message"]["text"]
    except (ValueError, KeyError, TypeError):
        return "?"
    return text[len(REPLY_PREFIX):] if isinstance(text, str) and text.startswith(REPLY_PREFIX) else "?"


def _serve(server: _Server, folder: Path) -> None:
    server.open(folder)
    server.serve_forever(poll_interval=0.5)


class GraphStandIn:
    """The stand-in, serving in a forked process: its ``url`` (``GRAPH_API_URL``), the replies it heard."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        server = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{server.server_port}"
        self.process = multiprocessing.get_context("fork").Process(target=_serve, args=(server, folder),
                                                                    name="graph-standin", daemon=True)
        self.process.start()
        server.socket.close()  # the child listens on its copy
        self.replies = RunFiles(folder)  # reads graph.runs: one line per reply

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def keys(self, mids: set[str]) -> dict[str, list[str]]:
        """The idempotency keys of every call for ``mids`` (to explain repeated replies)."""
        found: dict[str, list[str]] = {}
        with (self.folder / KEYS_FILE).open() as lines:
            for line in lines:
                mid, _, key = line.rstrip("\n").partition(" ")
                if mid in mids:
                    found.setdefault(mid, []).append(key)
        return found

    def others(self) -> list[str]:
        """Calls that were not a reply: ``<method> <path>`` each."""
        path = self.folder / OTHER_FILE
        return path.read_text().splitlines() if path.exists() else []

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
