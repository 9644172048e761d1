"""The Celery inbox end to end with real parts: a real redis-server, ``celery -A worker worker`` processes,
the web app over real HTTP on loopback and a Graph server on loopback that records every call; and, run in
this process against the same Redis (the tasks' bodies called here instead of in a worker), a poison item
at each stage of the path, injected, while every other event flows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import requests

from app import create_app
from bots import notices
from bots.deliveries import Deliveries, batch
from bots.errors import GraphError
from bots.flask import make_app
from bots.inbox.redis_journal import KINDS
from bots.signature import sign
from bots.testing import settings_for
from tests.e2e.test_gunicorn import free_port
from tests.support import sent_texts, terminate, wait_for

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
SECRET = "celery-inbox-secret-0123"
BUILD = Deliveries()
PERMANENT = {"error": {"message": "(#100) The recipient is not a valid user", "code": 100, "type": "OAuthException"}}


class Deployment:
    """The web app served on loopback, and Celery workers started on demand against the same Redis."""

    def __init__(self, redis_url: str, graph_url: str, folder: Path, serve, **settings: str) -> None:
        self.folder = folder
        self.env = {"PATH": os.environ["PATH"], "DOTENV": "0", "REDIS_URL": redis_url, "INBOX": "celery",
                    "HANDLERS": "tests.inbox.celery_bots", "GRAPH_API_URL": graph_url, "DATA_DIR": str(folder),
                    "LANES_APP_SECRET": SECRET, "LANES_ACCESS_TOKEN": "celery-inbox-token",
                    "LANES_VERIFY_TOKEN": "celery-inbox-verify", "GRAPH_RETRY_ATTEMPTS": "1",
                    "GRAPH_RETRY_BASE_MS": "0", "INBOX_RETRY_BASE_MS": "20", "INBOX_MAX_ATTEMPTS": "3",
                    "OUTBOX_MAX_ATTEMPTS": "3", "INBOX_LEASE_SECONDS": "2", "RUNS_FILE": str(folder / "runs.txt"),
                    "LOG_LEVEL": "WARNING", **settings}
        self.app = create_app({"HANDLERS": "tests.inbox.celery_bots", "ENVIRON": self.env, "DOTENV": False})
        self.inbox = self.app.extensions["bots"].inbox
        self.url = serve(self.app)
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        """A ``celery -A worker worker`` process with two pool processes; returns once it is consuming."""
        log = self.folder / f"worker-{len(self.workers)}.log"
        with open(log, "w") as out:
            worker = subprocess.Popen(
                [str(CELERY), "-A", "worker", "worker", "--concurrency", "2", "--loglevel", "info",
                 "--without-mingle", "--without-gossip", "--hostname", f"test-{len(self.workers)}-{os.getpid()}@%h"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(worker)
        wait_for(lambda: not _exited(worker, log) and " ready." in log.read_text(), timeout=30)
        return worker

    def post(self, body: dict) -> requests.Response:
        raw = json.dumps(body).encode()
        return requests.post(f"{self.url}/webhooks/lanes", data=raw, timeout=10, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, SECRET)})

    def runs(self) -> list[str]:
        path = self.folder / "runs.txt"
        return path.read_text().splitlines() if path.exists() else []

    def idle(self) -> bool:
        return self.inbox.pending == 0

    def close(self) -> None:
        for worker in self.workers:
            terminate(worker)


def _exited(worker: subprocess.Popen, log: Path) -> bool:
    if worker.poll() is not None:
        raise RuntimeError(f"the celery worker exited: {log.read_text()[-2000:]}")
    return False


@pytest.fixture
def deployment(redis_url, graph_server, tmp_path, serve):
    made: list[Deployment] = []

    def start(url: str = redis_url, **settings: str) -> Deployment:
        made.append(Deployment(url, graph_server.url, tmp_path, serve, **settings))
        return made[-1]
    yield start
    for one in made:
        one.close()


def test_each_conversation_runs_in_order_while_conversations_run_side_by_side(deployment, graph_server):
    served = deployment()
    served.start_worker()
    people = [Deliveries(sender=f"20000{n}") for n in range(3)]
    for n in range(30):
        assert served.post(people[n % 3].message(f"{n % 3}-{n // 3}")).status_code == 200

    wait_for(lambda: len(sent_texts(graph_server)) == 30, timeout=30)
    sent = sent_texts(graph_server)
    for person in range(3):
        assert [text for text in sent if text.startswith(f"re:{person}-")] == [f"re:{person}-{n}" for n in range(10)]
    assert [text for text in served.runs() if text.startswith("0-")] == [f"0-{n}" for n in range(10)]
    wait_for(served.idle)


def test_a_handler_slower_than_the_lease_keeps_its_lane_and_runs_once(deployment, graph_server):
    served = deployment(INBOX_LEASE_SECONDS="1")  # the sweeper looks every 0.5 s for lanes whose lock ran out
    served.start_worker()
    person = Deliveries(sender="2100001")
    for text in ("slow", "next"):
        assert served.post(person.message(text)).status_code == 200

    wait_for(lambda: len(sent_texts(graph_server)) == 2, timeout=20)
    wait_for(served.idle)
    assert served.runs() == ["slow", "next"]
    assert sent_texts(graph_server) == ["slow:done", "re:next"]


def test_redeliveries_run_once_and_every_effect_reaches_graph_once(deployment, graph_server):
    served = deployment()
    delivery = batch(*(BUILD.message(f"m{n}", sender=f"30000{n}") for n in range(5)))
    for _ in range(3):
        assert served.post(delivery).json() == {"received": 5}
    served.start_worker()

    wait_for(lambda: len(sent_texts(graph_server)) >= 5, timeout=20)
    wait_for(served.idle)
    assert sorted(served.runs()) == [f"m{n}" for n in range(5)]
    assert sorted(sent_texts(graph_server)) == [f"re:m{n}" for n in range(5)]


def test_a_failed_run_sends_nothing_and_its_retry_starts_clean(deployment, graph_server):
    served = deployment()
    served.start_worker()
    served.post(BUILD.message("flaky"))

    wait_for(lambda: "flaky:done" in sent_texts(graph_server), timeout=20)
    wait_for(served.idle)
    assert served.runs() == ["flaky"] * 3
    assert sent_texts(graph_server) == ["flaky:partial", "flaky:done"]
    keys = [call for call in graph_server.calls if call["path"].endswith("me/messages")]
    assert len(keys) == 2


def test_state_is_saved_with_the_run_that_succeeds_and_never_by_one_that_fails(deployment, graph_server):
    served = deployment(INBOX_MAX_ATTEMPTS="2")
    served.start_worker()
    for text in ("count", "count-then-raise", "count", "count"):
        served.post(BUILD.message(text))

    wait_for(lambda: len(sent_texts(graph_server)) == 3 and len(served.inbox.dead_letters()) == 1, timeout=20)
    assert sent_texts(graph_server) == ["count:1", "count:2", "count:3"]
    conversation = served.inbox.dead_letters()[0]["conversation"]
    assert served.inbox.journal.load_state("lanes", conversation) == {"count": 3}


def test_a_failing_handler_is_retried_then_parked_and_replay_runs_it_again(deployment, graph_server):
    served = deployment()
    served.start_worker()
    served.post(BUILD.message("raise please"))
    served.post(BUILD.message("fine"))

    [letter] = wait_for(lambda: served.inbox.dead_letters(), timeout=20)
    assert letter["kind"] == "event" and letter["attempts"] == 3
    assert letter["error"] == "RuntimeError: asked to fail on raise please"
    wait_for(lambda: sent_texts(graph_server) == ["re:fine"])
    assert served.runs()[0] == "raise please" and Counter(served.runs()) == {"raise please": 3, "fine": 1}

    with pytest.raises(ValueError):
        served.inbox.replay("letter:1")
    assert served.inbox.replay(letter["id"]) == 1
    wait_for(lambda: served.runs().count("raise please") == 6, timeout=20)
    wait_for(lambda: len(served.inbox.dead_letters()) == 1, timeout=10)
    assert served.inbox.replay(None) == 1


def test_messages_graph_refuses_are_retried_then_parked_with_graphs_reason(deployment, graph_server):
    served = deployment()
    graph_server.answer = (400, PERMANENT, 0.0)
    served.start_worker()
    served.post(BUILD.message("refused"))
    [refused] = wait_for(lambda: served.inbox.dead_letters(), timeout=20)
    assert refused["kind"] == "message" and refused["attempts"] == 1 and refused["what"] == "POST me/messages"
    assert "(#100) The recipient is not a valid user" in refused["error"]

    graph_server.answer = (503, {"error": {"message": "Service temporarily unavailable", "code": 2}}, 0.0)
    served.post(BUILD.message("unavailable", sender="400001"))
    letters = wait_for(lambda: (found := served.inbox.dead_letters()) and len(found) == 2 and found, timeout=20)
    assert letters[1]["attempts"] == 3 and "temporarily unavailable" in letters[1]["error"]

    graph_server.answer = (200, {"recipient_id": "1", "message_id": "m_1"}, 0.0)
    assert served.inbox.replay(None) == 2
    wait_for(lambda: Counter(sent_texts(graph_server)) >= Counter({"re:refused": 1, "re:unavailable": 1}))
    wait_for(served.idle)
    assert served.inbox.dead_letters() == []


def test_with_redis_down_the_webhook_answers_503_and_nothing_accepted_is_lost(deployment, graph_server, tmp_path):
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data), "--save", "",
               "--appendonly", "yes", "--appendfsync", "always"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _pings(client), timeout=10)
        served = deployment(f"redis://127.0.0.1:{port}/0")
        assert served.post(BUILD.message("before", sender="500001")).status_code == 200

        server.kill()
        server.wait(5)
        refused = served.post(BUILD.message("during", sender="500002"))
        assert refused.status_code == 503
        assert refused.json()["error"]["message"] == notices.INBOX_UNAVAILABLE

        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: _pings(client), timeout=10)
        assert served.post(BUILD.message("during", sender="500002")).status_code == 200  # Meta's retry
        served.start_worker()
        wait_for(lambda: sorted(sent_texts(graph_server)) == ["re:before", "re:during"], timeout=20)
        wait_for(served.idle)
    finally:
        server.kill()
        server.wait(5)


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def test_a_scaled_out_app_keeps_stats_and_previews_in_redis_and_lists_dead_letters_like_sqlite(deployment):
    from bots.stats import RedisCallStats
    from linkpreview import RedisPreviewCache

    served = deployment(ADMIN_TOKEN="celery-admin-token", INBOX_MAX_ATTEMPTS="1")
    assert isinstance(served.app.extensions["bots"].stats, RedisCallStats)
    assert isinstance(served.app.extensions["bots"].previews.cache, RedisPreviewCache)
    assert not (served.folder / "bots.sqlite3").exists()  # the machines share nothing but Redis
    served.start_worker()
    served.post(BUILD.message("raise once"))
    wait_for(lambda: served.inbox.dead_letters(), timeout=20)

    cli = served.app.test_cli_runner()
    listed = cli.invoke(args=["bots", "deadletters"])
    assert "event:1" in listed.output and "RuntimeError: asked to fail on raise once" in listed.output
    admin = requests.get(f"{served.url}/admin/api/deadletters", timeout=5,
                         headers={"Authorization": "Bearer celery-admin-token"}).json()
    assert admin["count"] == 1 and admin["pending"] == 0
    assert cli.invoke(args=["bots", "replay", "event:1"]).output.startswith("replaying 1 dead letter")
    wait_for(lambda: served.runs().count("raise once") == 2, timeout=20)
    stats = requests.get(f"{served.url}/admin/api/stats/lanes", timeout=5,
                         headers={"Authorization": "Bearer celery-admin-token"}).json()
    assert stats["last_request_day"] is None  # the handler failed both times: no Graph call was made


def test_the_sweeper_takes_up_lanes_whose_task_was_lost(deployment, graph_server):
    from bots.envelope import parse

    served = deployment()
    people = [Deliveries(sender=f"60000{n}") for n in range(3)]
    items = [item for n in range(3) for item in parse(json.dumps(people[n].message(f"lost {n}")).encode())[1]]
    served.inbox.journal.wake = lambda kind, token, delay: None  # stored, but no task is ever enqueued
    assert served.inbox.journal.append("lanes", items) == 3
    served.start_worker()

    wait_for(lambda: sorted(sent_texts(graph_server)) == [f"re:lost {n}" for n in range(3)], timeout=20)
    wait_for(served.idle)


def test_a_failing_handler_steps_out_of_line_so_the_next_message_is_answered_at_once(deployment, graph_server):
    served = deployment(INBOX_RETRY_BASE_MS="1000")
    served.start_worker()
    person = Deliveries(sender="7000001")
    served.post(person.message("raise first"))
    wait_for(lambda: served.runs() == ["raise first"])
    sent_at = time.monotonic()
    served.post(person.message("next"))

    wait_for(lambda: sent_texts(graph_server) == ["re:next"], timeout=5)
    assert time.monotonic() - sent_at < 1.0
    [letter] = wait_for(served.inbox.dead_letters, timeout=20)
    assert letter["attempts"] == 3 and letter["error"] == "RuntimeError: asked to fail on raise first"
    assert served.runs() == ["raise first", "next", "raise first", "raise first"]


def test_under_strict_order_the_next_message_waits_until_the_failing_one_is_parked(deployment, graph_server):
    served = deployment(INBOX_ORDER="strict", INBOX_MAX_ATTEMPTS="2", INBOX_RETRY_BASE_MS="1500")
    served.start_worker()
    person = Deliveries(sender="7000002")
    served.post(person.message("raise first"))
    wait_for(lambda: served.runs() == ["raise first"])
    sent_at = time.monotonic()
    served.post(person.message("next"))

    wait_for(lambda: sent_texts(graph_server) == ["re:next"], timeout=10)
    assert time.monotonic() - sent_at > 0.5
    assert served.runs() == ["raise first", "raise first", "next"]
    assert [letter["error"] for letter in served.inbox.dead_letters()] == ["RuntimeError: asked to fail on raise first"]


class InProcess:
    """The Celery inbox of ``bot`` in this process on the test Redis: ``post`` delivers through the app's test
    client, and ``work_until`` runs the tasks' bodies (``CeleryInbox.drain``) here, as a worker would."""

    def __init__(self, bot, redis_url: str, graph_url: str, **settings: str) -> None:
        env = {**settings_for(bot), "INBOX": "celery", "REDIS_URL": redis_url, "GRAPH_API_URL": graph_url,
               "GRAPH_RETRY_ATTEMPTS": "1", "GRAPH_RETRY_BASE_MS": "0", "INBOX_RETRY_BASE_MS": "20",
               "INBOX_MAX_ATTEMPTS": "3", "OUTBOX_MAX_ATTEMPTS": "3", "LOG_LEVEL": "CRITICAL", **settings}
        self.bot = bot
        self.secret = env[f"{bot.name.upper()}_APP_SECRET"]
        self.app = make_app([bot], env)
        self.client = self.app.test_client()
        self.inbox = self.app.extensions["bots"].inbox
        self.inbox.journal.wake = lambda kind, token, delay: None  # no tasks: work_until takes the work

    def post(self, body: dict) -> int:
        raw = json.dumps(body).encode()
        return self.client.post(f"/webhooks/{self.bot.name}", data=raw, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, self.secret)}).status_code

    def work_until(self, predicate, timeout: float = 15.0):
        """Drain events and messages until ``predicate()`` holds and nothing is waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for kind in KINDS:
                self.inbox.drain(kind)
            if (value := predicate()) and self.inbox.pending == 0:
                return value
        raise AssertionError("timed out working the inbox")


@pytest.fixture
def in_process(bot, redis_url, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        if event.text.startswith("poison"):
            raise RuntimeError(event.text)
        ctx.reply(f"re:{event.text}")

    return lambda **settings: InProcess(bot, redis_url, graph_server.url, **settings)


def post_from_three(served: InProcess, texts: list[str]) -> None:
    """Each text from three people in turn, so the poison shares its conversation with others."""
    people = [Deliveries(sender=f"80000{n}") for n in range(3)]
    for n, text in enumerate(texts):
        assert served.post(people[n % 3].message(text)) == 200


def test_a_stored_event_that_cannot_be_read_is_parked_with_why_and_the_rest_flow(in_process, graph_server):
    served = in_process()
    post_from_three(served, ["a", "b", "c", "d"])
    client = served.inbox.journal.redis
    [poison] = [key for key in client.scan_iter("bots:event:*") if b'"text":"b"' in client.hget(key, "body")]
    client.hset(poison, "body", '{"object": "page", "cut short')

    letters = served.work_until(served.inbox.dead_letters)
    assert sorted(sent_texts(graph_server)) == ["re:a", "re:c", "re:d"]
    assert [(letter["what"], letter["attempts"]) for letter in letters] == [("an unreadable delivery", 1)]
    assert letters[0]["error"].startswith("could not read the stored event: JSONDecodeError")


def test_a_handler_that_always_raises_is_retried_then_parked_and_its_conversation_goes_on(in_process, graph_server):
    served = in_process()
    post_from_three(served, ["a", "b", "c", "poison 1", "e", "f", "g"])

    letters = served.work_until(served.inbox.dead_letters)
    assert sorted(sent_texts(graph_server)) == ["re:a", "re:b", "re:c", "re:e", "re:f", "re:g"]
    assert [(letter["attempts"], letter["error"]) for letter in letters] == [(3, "RuntimeError: poison 1")]


def test_an_error_handlers_apology_reaches_graph_once_when_the_event_is_parked(in_process, bot, graph_server):
    bot.error_handler(lambda error, event, ctx: ctx.reply(f"sorry: {error}"))
    served = in_process()
    post_from_three(served, ["a", "poison 1", "c"])

    served.work_until(lambda: served.inbox.dead_letters() and "sorry: poison 1" in sent_texts(graph_server))
    assert sorted(sent_texts(graph_server)) == ["re:a", "re:c", "sorry: poison 1"]


def test_an_event_whose_finish_fails_is_retried_then_parked_while_its_batch_is_saved(in_process, graph_server,
                                                                                      monkeypatch):
    served = in_process()
    journal = served.inbox.journal
    finish = journal.finish

    def refuse_poison(finished):
        if any('"text":"b"' in done.job.body for done in finished):
            raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")
        return finish(finished)

    monkeypatch.setattr(journal, "finish", refuse_poison)
    post_from_three(served, ["a", "b", "c", "d", "e"])

    letters = served.work_until(served.inbox.dead_letters)
    assert sorted(sent_texts(graph_server)) == ["re:a", "re:c", "re:d", "re:e"]
    assert [(letter["attempts"], letter["error"]) for letter in letters] == [
        (3, "ResponseError: OOM command not allowed when used memory > 'maxmemory'")]


def test_a_reply_graph_refuses_for_good_is_parked_with_graphs_reason_and_the_rest_are_sent(in_process, graph_server,
                                                                                          monkeypatch):
    served = in_process()
    client = served.app.extensions["bots"].runtimes["demo"].client
    request = client.request

    def refuse_b(method, path, *, json=None, **options):
        if (json or {}).get("message", {}).get("text") == "re:b":
            raise GraphError("(#100) The recipient is not a valid user", code=100, type="OAuthException", status=400)
        return request(method, path, json=json, **options)

    monkeypatch.setattr(client, "request", refuse_b)
    post_from_three(served, ["a", "b", "c", "d", "e"])

    letters = served.work_until(served.inbox.dead_letters)
    assert sorted(sent_texts(graph_server)) == ["re:a", "re:c", "re:d", "re:e"]
    assert [(letter["kind"], letter["attempts"], letter["what"]) for letter in letters] == [
        ("message", 1, "POST me/messages")]
    assert letters[0]["error"].startswith("Graph API: (#100) The recipient is not a valid user")


def test_a_mid_and_a_sender_id_no_utf8_can_hold_are_stored_run_and_answered_beside_the_rest(in_process, graph_server):
    served = in_process()
    odd = Deliveries().message("odd", sender="9\ud800", mid="m2\ud800")  # JSON escapes the lone surrogates
    post_from_three(served, ["a", "b"])
    assert served.post(odd) == 200
    assert served.post(odd) == 200  # Meta's retry: the same mid runs once
    post_from_three(served, ["c"])

    served.work_until(lambda: len(sent_texts(graph_server)) == 4)
    assert sorted(sent_texts(graph_server)) == ["re:a", "re:b", "re:c", "re:odd"]
    assert [call["json"]["recipient"]["id"] for call in graph_server.calls
            if call["json"]["message"]["text"] == "re:odd"] == ["9\ud800"]
    assert served.inbox.dead_letters() == []
