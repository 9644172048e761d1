"""``/metrics``: each family appears and moves when its event happens, on the in-memory and the SQLite
inbox; ``METRICS_TOKEN`` guards it; no message text or secret ever reaches it."""

from __future__ import annotations

import json
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bots import Bot, Preview, metrics
from bots.deliveries import Deliveries
from bots.envelope import Item
from bots.flask import make_app
from bots.inbox.celery import CeleryInbox
from bots.signature import sign
from bots.testing import BotTester, settings_for
from tests.support import sent_texts, wait_for

VIEWER = "100071234567890"
TOKEN = "metrics-token-0123456789"


class Scrape:
    """The samples of one ``GET /metrics``, by name and labels."""

    def __init__(self, client, headers: dict | None = None) -> None:
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
        self.text = response.get_data(as_text=True)
        self.samples = {(sample.name, frozenset(sample.labels.items())): sample.value
                        for family in text_string_to_metric_families(self.text) for sample in family.samples}

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


class Counts:
    """What moved on ``client``'s ``/metrics`` since it was made: ``counts.moved(name, **labels)``."""

    def __init__(self, client) -> None:
        self.client = client
        self.before = Scrape(client)

    def moved(self, name: str, **labels: str) -> float:
        return Scrape(self.client).value(name, **labels) - self.before.value(name, **labels)


def link_request(link: str, viewer: str = VIEWER) -> dict:
    value = {"community": {"id": "987654321012345"}, "user": {"id": viewer}, "link": link}
    return {"object": "link", "entry": [{"time": 1700000007, "changes": [{"field": "preview", "value": value}]}]}


def test_deliveries_are_counted_by_bot_and_status_and_an_unknown_bot_is_one_label(bot):
    bot.on_message()(lambda event, ctx: None)
    tester = BotTester(bot)
    counts = Counts(tester.client)
    tester.message("hi")
    tester.message("hi")
    tester.post(tester.build.message("hi"), secret="not-the-secret")
    tester.post(tester.build.message("hi"), bot="nobody-1")
    tester.post(tester.build.message("hi"), bot="nobody-2")
    assert counts.moved("bots_deliveries_total", bot="demo", status="200") == 2
    assert counts.moved("bots_deliveries_total", bot="demo", status="403") == 1
    assert counts.moved("bots_deliveries_total", bot="unknown", status="404") == 2
    assert 'bot="nobody-1"' not in Scrape(tester.client).text


def test_a_body_over_the_size_limit_is_counted_as_a_413(bot):
    tester = BotTester(bot, settings={"WEBHOOK_MAX_BYTES": "1024"})
    counts = Counts(tester.client)
    raw = json.dumps(tester.build.message("x" * 2000)).encode()
    answer = tester.client.post("/webhooks/demo", data=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "1024" in answer.json["error"]["message"]
    assert counts.moved("bots_deliveries_total", bot="demo", status="413") == 1


def test_handled_unmatched_and_duplicate_events_and_the_handler_time(bot):
    @bot.on_message()
    def slow(event, ctx):
        time.sleep(0.02)

    tester = BotTester(bot)
    counts = Counts(tester.client)
    tester.message("hi", mid="m-once")
    tester.message("hi", mid="m-once")
    tester.postback("NOBODY_HANDLES_THIS")
    events = "bots_events_total"
    assert counts.moved(events, bot="demo", kind="page/messages", outcome="handled") == 1
    assert counts.moved(events, bot="demo", kind="page/messages", outcome="duplicate") == 1
    assert counts.moved(events, bot="demo", kind="page/messaging_postbacks", outcome="unmatched") == 1
    assert counts.moved("bots_handler_seconds_count", bot="demo", kind="page/messages") == 1
    assert counts.moved("bots_handler_seconds_count", bot="demo", kind="page/messaging_postbacks") == 0
    assert counts.moved("bots_handler_seconds_sum", bot="demo", kind="page/messages") >= 0.02
    assert counts.moved("bots_handler_seconds_bucket", bot="demo", kind="page/messages", le="0.01") == 0
    assert counts.moved("bots_handler_seconds_bucket", bot="demo", kind="page/messages", le="0.05") == 1


def test_the_durable_inbox_counts_each_event_once_and_its_sends(bot, served, graph_server):
    bot.on_message()(lambda event, ctx: ctx.reply("thanks"))
    app = served()
    counts = Counts(app.client)
    assert app.post(_message("hi")).status_code == 200
    wait_for(lambda: sent_texts(graph_server) == ["thanks"] and app.idle())
    wait_for(lambda: counts.moved("bots_outbox_sends_total", bot="demo", outcome="sent") == 1)
    assert counts.moved("bots_events_total", bot="demo", kind="page/messages", outcome="handled") == 1
    assert counts.moved("bots_handler_seconds_count", bot="demo", kind="page/messages") == 1
    assert counts.moved("bots_graph_calls_total", bot="demo", endpoint="/me/messages", status="200", code="none") == 1


def test_a_redelivery_the_sqlite_inbox_drops_is_a_duplicate(bot, served):
    bot.on_message()(lambda event, ctx: None)
    app = served()
    counts = Counts(app.client)
    body = _message("hi")
    app.post(body)
    app.post(body)
    wait_for(lambda: app.idle() and counts.moved("bots_events_total", bot="demo", kind="page/messages",
                                                  outcome="duplicate") == 1)
    assert counts.moved("bots_events_total", bot="demo", kind="page/messages", outcome="handled") == 1


def test_a_redelivery_the_redis_inbox_drops_is_a_duplicate(bot, redis_url, tmp_path):
    app = make_app([bot], {**settings_for(bot), "REDIS_URL": redis_url, "INBOX": "celery", "DATA_DIR": str(tmp_path)})
    assert isinstance(app.extensions["bots"].inbox, CeleryInbox)
    client = app.test_client()
    counts = Counts(client)
    raw = json.dumps(_message("hi")).encode()
    signature = sign(raw, settings_for(bot)["DEMO_APP_SECRET"])
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    for _ in range(3):
        assert client.post("/webhooks/demo", data=raw, headers=headers).status_code == 200
    assert counts.moved("bots_events_total", bot="demo", kind="page/messages", outcome="duplicate") == 2


def test_a_failing_handler_is_retried_then_parked(bot, served):
    @bot.on_message()
    def broken(event, ctx):
        raise RuntimeError("no")

    app = served(INBOX_MAX_ATTEMPTS="2")
    counts = Counts(app.client)
    app.post(_message("hi"))
    wait_for(lambda: app.inbox.dead_letters())
    events = "bots_events_total"
    assert counts.moved(events, bot="demo", kind="page/messages", outcome="retried") == 1
    assert counts.moved(events, bot="demo", kind="page/messages", outcome="dead") == 1
    assert counts.moved(events, bot="demo", kind="page/messages", outcome="handled") == 0
    assert counts.moved("bots_retries_total", bot="demo", what="event") == 1
    assert counts.moved("bots_dead_letters_total", bot="demo", what="event") == 1
    assert counts.moved("bots_handler_seconds_count", bot="demo", kind="page/messages") == 2


def test_a_graph_error_code_and_a_message_graph_refuses_for_good(bot, served, graph_server):
    bot.on_mention(lambda event, ctx: ctx.comment("on it"))
    graph_server.answer = (400, {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100}},
                           0.0)
    app = served()
    counts = Counts(app.client)
    app.post(_mention())
    wait_for(lambda: app.inbox.dead_letters())
    assert counts.moved("bots_graph_calls_total", bot="demo", endpoint="/{id}/comments", status="400",
                        code="100") == 1
    assert counts.moved("bots_outbox_sends_total", bot="demo", outcome="dead") == 1
    assert counts.moved("bots_dead_letters_total", bot="demo", what="message") == 1
    assert counts.moved("bots_events_total", bot="demo", kind="page/mention", outcome="handled") == 1


def test_graph_calls_with_no_answer_are_network_and_their_retries_are_counted(bot):
    bot.on_message()(lambda event, ctx: ctx.reply("hello"))
    tester = BotTester(bot, graph_url="http://127.0.0.1:9", settings={"GRAPH_RETRY_ATTEMPTS": "2", "INBOX": "memory"})
    counts = Counts(tester.client)
    tester.message("hi")
    assert counts.moved("bots_graph_calls_total", bot="demo", endpoint="/me/messages", status="network",
                        code="none") == 2
    assert counts.moved("bots_retries_total", bot="demo", what="graph") == 1
    assert counts.moved("bots_events_total", bot="demo", kind="page/messages", outcome="failed") == 1


def test_previews_by_source_and_their_latency():
    wiki = Bot("wiki_metrics")
    release = threading.Event()

    @wiki.link_preview("wiki.example.com", path=r"^/p/")
    def page(request):
        if request.link.endswith("/slow"):
            release.wait(5)
        return Preview(title="A page")

    tester = BotTester(wiki, settings={"LINKPREVIEW_BUDGET_MS": "50"})
    counts = Counts(tester.client)
    for link in ("https://wiki.example.com/p/home", "https://wiki.example.com/p/home",
                 "https://wiki.example.com/p/slow", "https://elsewhere.example.org/x"):
        assert tester.post(link_request(link)).status_code == 200
    release.set()
    for source in ("resolver", "cache", "budget", "unregistered"):
        assert counts.moved("bots_previews_total", bot="wiki_metrics", source=source) == 1, source
        assert counts.moved("bots_preview_seconds_count", bot="wiki_metrics", source=source) == 1, source
    assert counts.moved("bots_preview_seconds_bucket", bot="wiki_metrics", source="budget", le="0.025") == 0
    assert counts.moved("bots_preview_seconds_bucket", bot="wiki_metrics", source="budget", le="0.25") == 1


def test_the_inbox_backlog_and_how_long_it_has_waited(bot, served):
    started, release = threading.Event(), threading.Event()

    @bot.on_message()
    def stuck(event, ctx):
        started.set()
        release.wait(10)

    app = served()
    try:
        app.post(_message("first"))
        app.post(_message("second"))
        assert started.wait(5)
        time.sleep(0.3)
        scrape = Scrape(app.client)
        assert scrape.value("bots_inbox_pending") >= 1
        assert scrape.value("bots_inbox_oldest_pending_seconds") >= 0.3
    finally:
        release.set()
    wait_for(app.idle)
    scrape = Scrape(app.client)
    assert (scrape.value("bots_inbox_pending"), scrape.value("bots_inbox_oldest_pending_seconds")) == (0, 0)


def test_metrics_token_is_required_when_set(bot):
    tester = BotTester(bot, settings={"METRICS_TOKEN": TOKEN})
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        response = tester.client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json == {"error": {"message": "send Authorization: Bearer <METRICS_TOKEN>",
                                           "field": "Authorization"}}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    Scrape(tester.client, {"Authorization": f"Bearer {TOKEN}"})


def test_no_message_text_or_secret_reaches_the_output(bot):
    bot.on_message()(lambda event, ctx: ctx.reply("reply-text-6f1c"))
    tester = BotTester(bot, settings={"METRICS_TOKEN": TOKEN})
    tester.message("message-text-93ab", mid="mid-77e2")
    tester.post(link_request("https://wiki.example.com/p/link-path-51d0"))
    text = Scrape(tester.client, {"Authorization": f"Bearer {TOKEN}"}).text
    assert 'bot="demo"' in text
    secrets = [TOKEN, tester.env["DEMO_APP_SECRET"], tester.env["DEMO_ACCESS_TOKEN"], tester.env["DEMO_VERIFY_TOKEN"]]
    for found in ("message-text-93ab", "reply-text-6f1c", "mid-77e2", "link-path-51d0", VIEWER, *secrets):
        assert found not in text


@pytest.mark.parametrize(("path", "template"), [
    ("me/messages", "/me/messages"), ("/v18.0/me/messages", "/me/messages"), ("1234/comments", "/{id}/comments"),
    ("123_456/comments", "/{id}/comments"), ("t_42/participants", "/{id}/participants"), ("98765", "/{id}"),
    ("app/subscriptions?x=1", "/app/subscriptions"), ("me/subscribed_apps", "/me/subscribed_apps")])
def test_graph_endpoints_are_templates_without_ids(path, template):
    assert metrics.endpoint(path) == template


def test_graph_endpoint_templates_are_capped(monkeypatch):
    monkeypatch.setattr(metrics, "_endpoints", set())
    monkeypatch.setattr(metrics, "MAX_ENDPOINTS", 2)
    assert [metrics.endpoint(path) for path in ("me/messages", "1/feed", "1/likes", "2/feed")] == [
        "/me/messages", "/{id}/feed", "other", "/{id}/feed"]


@pytest.mark.parametrize(("object", "kind", "data", "label"), [
    ("page", "messaging", {"message": {"mid": "m"}}, "page/messages"),
    ("page", "messaging", {"postback": {}}, "page/messaging_postbacks"),
    ("page", "messaging", {"reaction": {}}, "page/reaction"),
    ("page", "messaging", {"made_up": {}}, "page/messaging"),
    ("group", "changes", {"field": "comments", "value": {}}, "group/comments"),
    ("group", "changes", {"field": "anything-at-all", "value": {}}, "group/other"),
    ("made_up", "changes", {"field": "comments", "value": {}}, "other/other"),
    ("page", "changes", {"field": ["not", "text"]}, "page/other")])
def test_event_kinds_come_from_a_fixed_set(object, kind, data, label):
    assert metrics.kind_of(Item(object, "1", None, kind, data, "entry[0]")) == label


def _message(text: str) -> dict:
    return Deliveries().message(text)


def _mention() -> dict:
    return Deliveries().mention("@demo hello", post_id="1234567890_987654321")
