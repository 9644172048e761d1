"""The real app for gunicorn, as ``gunicorn app:app`` serves the helpdesk bot, in several forms:

- ``bench.wsgi_real:durable`` appends every delivery to the durable SQLite inbox before its 200,
  as in production, but runs no handler or sender threads (``HANDLER_THREADS=0``, as a web process
  that only accepts): the request path with the append;
- ``bench.wsgi_real:app`` runs the handlers in the app's in-memory thread pool (``INBOX=memory``), and
  sends their replies to a loopback port nobody listens on (one attempt, no retry backoff): every
  reply fails at once, the helpdesk's error handler then fails too and logs a traceback;
- ``bench.wsgi_real:answered`` is the same, but its Graph session's transport answers every call
  as the Send API does, without a network: a handler costs what it costs when Graph says yes
  (requests, appsecret_proof, JSON, call statistics in the store);
- ``bench.wsgi_real:ingest_only`` queues the handlers' jobs into a counter instead, so only the
  request path (signature, JSON, envelope, split, enqueue, answer) is left, as in ``bench/ingest.py``;
- ``bench.wsgi_real:previews`` serves the documents bot alone, for link-preview answers;
- ``bench.wsgi_real:celery`` appends every delivery to Redis lanes and enqueues its Celery task, as
  a scaled-out web process does (``REDIS_URL`` from ``BENCH_REDIS_URL``); no worker runs.

Settings come from here, not from ``.env`` or the environment, so the run does not depend on the
machine. The forms whose handlers run use the in-memory inbox with a short queue
(``HANDLER_QUEUE_LIMIT``): when handlers fall behind the app answers 503 at once, instead of piling
up a backlog that outlives the timed load (the durable inbox has no such limit; ``bench/latency.py``
measures it whole, at a steady rate).
Apps are built on first use, so importing :class:`CountingExecutor` builds nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import requests
from flask import Flask
from requests.adapters import BaseAdapter

from app import create_app
from bench.payloads import CREDENTIALS, DEAD_GRAPH_URL, PREVIEW_CREDENTIALS
from bots.executor import Job

QUEUE_LIMIT = 256  # per gunicorn worker
#: ``bench/throughput.py`` names a temporary DATA_DIR for the embedded store; without it, the system's temp dir.
SETTINGS = {"DOTENV": False, "ENVIRON": dict(CREDENTIALS), "BOTS": "helpdesk", "GRAPH_API_URL": DEAD_GRAPH_URL,
            "GRAPH_RETRY_ATTEMPTS": 1, "HANDLER_QUEUE_LIMIT": QUEUE_LIMIT, "INBOX": "memory",
            "DATA_DIR": os.environ.get("BENCH_DATA_DIR") or tempfile.gettempdir()}
SEND_API_ANSWER = b'{"recipient_id": "100000000000000", "message_id": "m_bench"}'


class CountingExecutor:
    """Accepts every batch of jobs without running it: keeps handler work out of a measurement."""

    def __init__(self) -> None:
        self.jobs = 0

    def submit(self, jobs: Sequence[Job]) -> bool:
        self.jobs += len(jobs)
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        return None


class AnsweringTransport(BaseAdapter):
    """A ``requests`` transport that answers every call at once with a Send API success."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = SEND_API_ANSWER
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        return None


def answering_session() -> requests.Session:
    """A session whose every call is answered by :class:`AnsweringTransport`."""
    session = requests.Session()
    session.mount("http://", AnsweringTransport())
    session.mount("https://", AnsweringTransport())
    return session


def __getattr__(name: str) -> Flask:
    """Build ``app``, ``answered``, ``durable``, ``ingest_only``, ``previews`` or ``celery`` when gunicorn
    first asks for it."""
    if name == "app":
        application = create_app(SETTINGS)
    elif name == "answered":
        application = create_app({**SETTINGS, "GRAPH_SESSION_FACTORY": answering_session})
    elif name == "durable":
        application = create_app({**SETTINGS, "INBOX": "sqlite", "HANDLER_THREADS": 0, "OUTBOX_THREADS": 0})
    elif name == "celery":
        application = create_app({**SETTINGS, "INBOX": "celery", "REDIS_URL": os.environ["BENCH_REDIS_URL"]})
    elif name == "ingest_only":
        application = create_app({**SETTINGS, "EXECUTOR": CountingExecutor()})
    elif name == "previews":
        application = create_app({**SETTINGS, "ENVIRON": {**CREDENTIALS, **PREVIEW_CREDENTIALS}, "BOTS": "docs",
                                  "EXECUTOR": CountingExecutor()})
    else:
        raise AttributeError(name)
    globals()[name] = application
    return application
