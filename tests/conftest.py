"""Fixtures shared by the tests: a fresh bot, its tester, and real servers on loopback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from bots import Bot
from bots.testing import BotTester


@pytest.fixture
def bot() -> Bot:
    """A bot with no handlers yet: each test registers what it needs."""
    return Bot("demo", description="a bot for tests")


@pytest.fixture
def tester(bot: Bot) -> BotTester:
    """The test kit as production runs: the durable inbox, its outbox and state, inline."""
    return BotTester(bot)


@pytest.fixture
def memory_tester(bot: Bot) -> BotTester:
    """The test kit on the in-memory inbox (``INBOX=memory``): effects are made while the handler runs."""
    return BotTester(bot, settings={"INBOX": "memory"})


class LoopbackServer:
    """A WSGI app served over real HTTP on 127.0.0.1, in a thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator:
    """``serve(app)`` starts ``app`` on a free loopback port and returns its base URL."""
    servers: list[LoopbackServer] = []

    def start(app) -> str:
        servers.append(LoopbackServer(app))
        return servers[-1].url
    yield start
    for server in servers:
        server.close()


@pytest.fixture
def graph_server(serve):
    """A loopback Graph server: ``graph.answer`` sets the next answer; ``graph.calls`` records requests."""
    app = Flask("fake-graph")
    app.calls = []
    app.answer = (200, {"recipient_id": "1", "message_id": "m_1"}, 0.0)
    app.script = []  # answers for the next calls, (status, body, delay[, headers]), before ``answer``

    @app.route("/<path:path>", methods=["GET", "POST", "DELETE"])
    def anything(path):
        app.calls.append({"method": request.method, "path": path, "args": request.args.to_dict(),
                          "auth": request.headers.get("Authorization"), "json": request.get_json(silent=True)})
        status, body, delay, *headers = app.script.pop(0) if app.script else app.answer
        time.sleep(delay)
        response = app.make_response((body, status) if isinstance(body, str) else jsonify(body))
        response.status_code = status
        response.headers.update(headers[0] if headers else {})
        return response

    app.url = serve(app)
    return app


@pytest.fixture
def served(bot, graph_server, tmp_path):
    """``served(**settings)`` serves ``bot`` with the durable SQLite inbox, answering through ``graph_server``."""
    from tests.support import Served
    made: list[Served] = []

    def start(**settings: str) -> Served:
        made.append(Served(bot, graph_server.url, str(tmp_path), **settings))
        return made[-1]
    yield start
    for one in made:
        one.close()


_REDIS_DBS = iter(range(10**9))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own on the test server (``make test`` starts it), flushed before and after.

    Fails when no Redis answers: only ``BOTS_TEST_NO_REDIS=1``, set on purpose, turns that into a skip.
    """
    import redis

    base = os.environ.get("BOTS_TEST_REDIS_URL", "redis://127.0.0.1:6390").rstrip("/")
    url = f"{base}/{1 + next(_REDIS_DBS) % 31}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.ConnectionError:
        if os.environ.get("BOTS_TEST_NO_REDIS") == "1":
            pytest.skip("BOTS_TEST_NO_REDIS=1: no Redis for this run")
        pytest.fail(f"no Redis at {base}: run `make test` (it starts one with scripts/redis.sh) "
                    "or set BOTS_TEST_NO_REDIS=1 to skip the Redis tests on purpose")
    yield url
    client.flushdb()
    client.close()
