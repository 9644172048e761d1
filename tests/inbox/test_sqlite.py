"""The durable SQLite inbox, end to end in one process: signed deliveries in, replies out to a real
Graph server on loopback, with handler and sender threads running as they do under gunicorn."""

from __future__ import annotations

import errno
import json
import time

from bots.deliveries import Deliveries, batch
from tests.support import sent_texts, wait_for

BUILD = Deliveries()


def test_a_reply_reaches_graph_after_the_200_and_leaves_nothing_pending(bot, served, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        ctx.reply(f"you said {event.text}")

    server = served()
    response = server.post(BUILD.message("hi"))

    assert response.status_code == 200
    assert wait_for(lambda: sent_texts(graph_server)) == ["you said hi"]
    wait_for(server.idle)


def test_the_same_batch_delivered_three_times_runs_each_handler_once(bot, served, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        ctx.reply(event.text)

    server = served()
    delivery = batch(*(BUILD.message(f"m{n}", sender=f"10007{n}") for n in range(5)))
    for _ in range(3):
        assert server.post(delivery).json == {"received": 5}

    wait_for(lambda: len(sent_texts(graph_server)) >= 5)
    wait_for(server.idle)
    time.sleep(0.1)
    assert sorted(sent_texts(graph_server)) == [f"m{n}" for n in range(5)]


def test_one_conversations_events_are_handled_in_the_order_they_arrived(bot, served, graph_server):
    seen: list[str] = []

    @bot.on_message()
    def slow_first(event, ctx):
        if event.text == "0":
            time.sleep(0.2)
        seen.append(event.text)
        ctx.reply(event.text)

    server = served(HANDLER_THREADS="4")
    for n in range(6):
        server.post(BUILD.message(str(n)))

    wait_for(lambda: len(sent_texts(graph_server)) == 6)
    assert seen == [str(n) for n in range(6)]
    assert sent_texts(graph_server) == [str(n) for n in range(6)]


def test_a_handler_slower_than_the_lease_keeps_its_event_and_runs_once(bot, served, graph_server):
    runs = []

    @bot.on_message()
    def slow(event, ctx):
        runs.append(event.text)
        time.sleep(2.5)
        ctx.reply("done after a while")

    server = served(INBOX_LEASE_SECONDS="1", HANDLER_THREADS="4")
    server.post(BUILD.message("take your time"))

    assert wait_for(lambda: sent_texts(graph_server), timeout=10) == ["done after a while"]
    wait_for(server.idle)
    assert runs == ["take your time"]


def test_a_handler_that_fails_half_way_sends_nothing_then_succeeds_on_retry(bot, served, graph_server):
    runs = []

    @bot.on_message()
    def flaky(event, ctx):
        runs.append(event.text)
        ctx.reply("first half")
        if len(runs) < 3:
            raise RuntimeError("database not ready")
        ctx.reply("second half")

    server = served()
    server.post(BUILD.message("go"))

    wait_for(lambda: len(sent_texts(graph_server)) == 2)
    assert len(runs) == 3
    assert sent_texts(graph_server) == ["first half", "second half"]


def test_a_handler_that_always_fails_becomes_a_dead_letter_and_replay_runs_it_again(bot, served, graph_server):
    broken = {"on": True}

    @bot.on_message()
    def fragile(event, ctx):
        if broken["on"]:
            raise ValueError("the ticket system is down")
        ctx.reply("filed")

    server = served(INBOX_MAX_ATTEMPTS="3")
    server.post(BUILD.message("file a ticket"))

    [letter] = wait_for(server.inbox.dead_letters)
    assert letter["kind"] == "event" and letter["attempts"] == 3
    assert letter["error"] == "ValueError: the ticket system is down"
    assert "file a ticket" not in json.dumps(letter)  # no message content in the operator's view
    assert sent_texts(graph_server) == []

    broken["on"] = False
    assert server.inbox.replay(letter["id"]) == 1
    assert wait_for(lambda: sent_texts(graph_server)) == ["filed"]
    assert server.inbox.dead_letters() == []


def test_error_handlers_see_the_failure_but_the_failed_runs_effects_are_dropped(bot, served, graph_server):
    @bot.on_message()
    def fails(event, ctx):
        ctx.reply("half done")
        raise RuntimeError("boom")

    @bot.error_handler
    def apologise(error, event, ctx):
        ctx.logger.info("apologising for %s", type(error).__name__)

    server = served(INBOX_MAX_ATTEMPTS="2")
    server.post(BUILD.message("x"))
    wait_for(server.inbox.dead_letters)
    assert sent_texts(graph_server) == []


def test_state_is_kept_per_conversation_and_a_failed_handler_leaves_it_unchanged(bot, served, graph_server):
    @bot.on_message()
    def count(event, ctx):
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        if event.text == "fail":
            raise RuntimeError("after changing the state")
        ctx.reply(f"{event.text} {ctx.state['n']}")

    server = served(INBOX_MAX_ATTEMPTS="1")
    for text in ("a", "fail", "b"):
        server.post(BUILD.message(text))
    server.post(BUILD.message("other", sender="100079999"))

    wait_for(lambda: len(sent_texts(graph_server)) == 3)
    assert [text for text in sent_texts(graph_server) if text != "other 1"] == ["a 1", "b 2"]
    assert "other 1" in sent_texts(graph_server)


def test_state_that_json_cannot_hold_fails_the_event_with_a_clear_reason(bot, served, graph_server):
    @bot.on_message()
    def keeps_an_object(event, ctx):
        ctx.state["when"] = object()
        ctx.reply("saved?")

    server = served(INBOX_MAX_ATTEMPTS="1")
    server.post(BUILD.message("x"))
    [letter] = wait_for(server.inbox.dead_letters)
    assert letter["error"].startswith("TypeError: ctx.state must hold JSON values only")
    assert sent_texts(graph_server) == []


def test_a_permanent_graph_error_parks_the_message_with_graphs_reason(bot, served, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        ctx.reply("hello")

    graph_server.answer = (400, {"error": {"message": "Invalid OAuth access token.", "code": 190}}, 0.0)
    server = served()
    server.post(BUILD.message("x"))

    [letter] = wait_for(server.inbox.dead_letters)
    assert letter["kind"] == "message" and letter["what"] == "POST me/messages"
    assert letter["error"] == "Graph API: Invalid OAuth access token. code=190 status=400"
    assert len(graph_server.calls) == 1

    graph_server.answer = (200, {"recipient_id": "1", "message_id": "m_1"}, 0.0)
    server.inbox.replay()
    wait_for(lambda: len(graph_server.calls) == 2)
    wait_for(server.idle)


def test_passing_graph_faults_are_retried_with_the_same_idempotency_key(bot, served, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        ctx.reply("hello")

    graph_server.script = [(500, {"error": {"message": "oops", "code": 2}}, 0.0),
                           (400, {"error": {"message": "slow down", "code": 613}}, 0.0)]
    keys = []
    server = served()
    original = server.inbox.runner.runtimes[bot.name].client.session.request

    def spy(method, url, **kwargs):
        keys.append((kwargs.get("headers") or {}).get("X-Idempotency-Key"))
        return original(method, url, **kwargs)
    server.inbox.runner.runtimes[bot.name].client.session.request = spy
    server.post(BUILD.message("x"))

    wait_for(lambda: len(graph_server.calls) == 3)
    wait_for(server.idle)
    assert len(set(keys)) == 1 and keys[0]
    assert server.inbox.dead_letters() == []


def test_a_handler_posts_then_comments_on_its_post_through_the_outbox(bot, served, graph_server):
    @bot.on_message()
    def announce(event, ctx):
        post = ctx.post("12345", "Maintenance tonight")
        ctx.comment("Ask here if you have questions", target=post)

    graph_server.answer = (200, {"id": "12345_678"}, 0.0)
    server = served()
    server.post(BUILD.message("announce"))

    wait_for(lambda: len(graph_server.calls) == 2)
    assert [call["path"] for call in graph_server.calls] == ["12345/feed", "12345_678/comments"]


def test_a_new_group_thread_is_renamed_and_written_to_once_graph_has_named_it(bot, served, graph_server):
    @bot.on_message()
    def open_group(event, ctx):
        sent = ctx.send("welcome", ids=["100071", "100072"])
        ctx.rename_thread("Incident 42", thread=sent.thread_key)
        ctx.send("queued", thread=sent.thread_key)

    graph_server.answer = (200, {"message_id": "m_1", "thread_key": "t_42"}, 0.0)
    server = served()
    server.post(BUILD.message("x"))

    wait_for(lambda: len(graph_server.calls) == 3)
    assert graph_server.calls[0]["json"]["recipient"] == {"ids": ["100071", "100072"]}
    assert graph_server.calls[1]["path"] == "t_42/threadname"
    assert graph_server.calls[2]["json"]["recipient"] == {"thread_key": "t_42"}


def test_an_effect_whose_handle_graph_did_not_answer_is_parked_naming_the_field(bot, served, graph_server):
    @bot.on_message()
    def announce(event, ctx):
        post = ctx.post("12345", "Maintenance tonight")
        ctx.comment("questions here", target=post)

    graph_server.answer = (200, {"success": True}, 0.0)
    server = served()
    server.post(BUILD.message("announce"))

    [letter] = wait_for(server.inbox.dead_letters)
    assert letter["kind"] == "message" and "id of effect 0" in letter["error"]
    assert len(graph_server.calls) == 1


def test_a_failing_event_steps_out_of_line_and_the_next_message_is_answered_at_once(bot, served, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        if event.text == "boom":
            raise RuntimeError("boom")
        ctx.reply(f"pong {event.text}")

    server = served(INBOX_MAX_ATTEMPTS="3", INBOX_RETRY_BASE_MS="1000")
    server.post(BUILD.message("boom"))
    time.sleep(0.2)
    sent_at = time.monotonic()
    server.post(BUILD.message("ping"))

    assert wait_for(lambda: sent_texts(graph_server)) == ["pong ping"]
    assert time.monotonic() - sent_at < 1.0
    [letter] = wait_for(server.inbox.dead_letters, timeout=10)
    assert letter["attempts"] == 3 and letter["error"] == "RuntimeError: boom"


def test_under_strict_order_the_next_message_waits_for_the_failing_one(bot, served, graph_server):
    @bot.on_message()
    def echo(event, ctx):
        if event.text == "boom":
            raise RuntimeError("boom")
        ctx.reply(f"pong {event.text}")

    server = served(INBOX_ORDER="strict", INBOX_MAX_ATTEMPTS="2", INBOX_RETRY_BASE_MS="1500")
    server.post(BUILD.message("boom"))
    time.sleep(0.2)
    sent_at = time.monotonic()
    server.post(BUILD.message("ping"))

    assert wait_for(lambda: sent_texts(graph_server), timeout=10) == ["pong ping"]
    assert time.monotonic() - sent_at > 0.5
    assert [letter["error"] for letter in server.inbox.dead_letters()] == ["RuntimeError: boom"]


def test_when_the_inbox_cannot_store_a_delivery_the_webhook_answers_503_so_meta_retries(bot, served, monkeypatch):
    @bot.on_message()
    def echo(event, ctx):
        ctx.reply("hi")

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    server = served()
    monkeypatch.setattr("bots.inbox.arrivals.os.write", disk_full)  # a full disk cannot be made here
    response = server.post(BUILD.message("x"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"]["message"].startswith("the inbox could not store this delivery")
