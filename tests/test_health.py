"""The probes: ``/healthz`` turns red when a restart would help, ``/readyz`` also when the inbox is stuck."""

from __future__ import annotations

import threading
import time

import pytest

from app import create_app
from bots import notices
from bots.deliveries import Deliveries
from bots.testing import settings_for
from handlers.helpdesk import bot as helpdesk
from tests.e2e.test_gunicorn import free_port
from tests.support import wait_for

deliveries = Deliveries()


@pytest.fixture
def stalled(bot):
    """A handler that blocks until the test lets it go: the inbox is stuck while it runs."""
    release = threading.Event()

    @bot.on_message()
    def hang(event, ctx):
        release.wait(20)
    yield release
    release.set()


def test_a_fresh_server_is_live_and_ready_and_says_what_it_runs(served):
    server = served(HANDLER_THREADS="2", OUTBOX_THREADS="1")

    live = server.client.get("/healthz")
    ready = server.client.get("/readyz")

    assert live.status_code == ready.status_code == 200
    assert ready.json == {"ok": True, "bots": ["demo"], "pending": 0, "waited_seconds": None,
                          "threads": {"handler": {"alive": 2, "started": 2}, "sender": {"alive": 1, "started": 1}}}


def test_a_stalled_inbox_turns_readiness_red_within_its_threshold_and_green_once_it_moves(served, stalled):
    server = served(HANDLER_THREADS="1", READY_MAX_AGE_SECONDS="1")
    assert server.post(deliveries.message("first")).status_code == 200
    assert server.post(deliveries.message("second", sender="100072")).status_code == 200
    posted = time.monotonic()

    red = wait_for(lambda: (answer := server.client.get("/readyz")).status_code == 503 and answer, timeout=5)

    assert time.monotonic() - posted < 2.0, "red within the 1 s threshold (plus a probe's slack)"
    [problem] = red.json["error"]["problems"]
    assert problem["check"] == "backlog"
    assert "READY_MAX_AGE_SECONDS=1" in problem["message"]
    assert server.client.get("/healthz").status_code == 200, "a backlog alone is no reason to restart"
    stalled.set()
    wait_for(lambda: server.client.get("/readyz").status_code == 200, timeout=5)


def test_a_stalled_memory_inbox_turns_readiness_red_too(served, stalled):
    server = served(INBOX="memory", HANDLER_THREADS="1", READY_MAX_AGE_SECONDS="1")
    assert server.post(deliveries.message("first")).status_code == 200

    red = wait_for(lambda: (answer := server.client.get("/readyz")).status_code == 503 and answer, timeout=5)

    assert red.json["error"]["problems"][0]["check"] == "backlog"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_handler_thread_that_died_turns_both_probes_red_naming_it(bot, served):
    @bot.on_message()
    def leave(event, ctx):
        raise SystemExit("a handler that exits its thread")

    server = served(HANDLER_THREADS="1")
    assert server.client.get("/healthz").status_code == 200
    server.post(deliveries.message("bye"))

    live = wait_for(lambda: (answer := server.client.get("/healthz")).status_code == 503 and answer)

    assert live.json["error"]["problems"] == [
        {"check": "threads", "message": notices.THREADS_DIED.format(count=1, kind="handler")}]
    assert server.client.get("/readyz").status_code == 503


def test_both_probes_answer_503_naming_the_store_when_redis_cannot_be_reached():
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app({"DOTENV": False, "ENVIRON": {}, "BOTS": "helpdesk", "REDIS_URL": nobody_listens,
                      **settings_for(helpdesk)})

    for probe in ("/healthz", "/readyz"):
        answer = app.test_client().get(probe)
        assert answer.status_code == 503
        assert answer.json["ok"] is False
        assert answer.json["error"]["problems"] == [{"check": "store", "message": notices.INBOX_UNREACHABLE}]
