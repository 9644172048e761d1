"""No poison item stops the SQLite inbox: one event that fails at any stage (promotion, typing, dedupe keying,
its handler, the commit, the send) ends as a dead letter with the reason, or is handled after all, while
every other event, of its conversation too, is handled. End to end: signed deliveries in, Graph on loopback."""

from __future__ import annotations

import json
import sqlite3

from flask import jsonify, request

from bots import dispatch
from bots.deliveries import Deliveries, batch
from bots.envelope import Item
from bots.inbox import SQLiteJournal
from bots.inbox import sqlite_journal as journal_module
from tests.support import sent_texts, wait_for

BUILD = Deliveries()
POISON = "m_poison"


def is_poison(item: Item) -> bool:
    message = item.data.get("message")
    return isinstance(message, dict) and message.get("mid") == POISON


def echo(bot) -> None:
    @bot.on_message()
    def reply(event, ctx):
        ctx.reply(f"re {event.text}")


def post_around_the_poison(server) -> list[str]:
    """Deliver an event before the poison one in its conversation, the poison one, one after it and one of
    another conversation; the replies the others must get."""
    for body in (BUILD.message("before", sender="1001"), BUILD.message("poison", sender="1001", mid=POISON),
                 BUILD.message("after", sender="1001"), BUILD.message("elsewhere", sender="1002")):
        assert server.post(body).status_code == 200
    return ["re after", "re before", "re elsewhere"]


def settled(server) -> dict:
    """The one dead letter, once nothing else waits."""
    [letter] = wait_for(server.inbox.dead_letters)
    wait_for(server.idle)
    return letter


class Forgetful(dict):
    """A cache that keeps nothing: every record is read back from the log, as when another process accepted it."""

    def __setitem__(self, key, value) -> None:
        pass


def test_a_delivery_that_cannot_be_read_again_when_it_is_promoted(bot, served, graph_server, monkeypatch):
    echo(bot)
    parse = journal_module.parse

    def parse_but_the_poison(body: bytes):
        if POISON.encode() in body:
            raise ValueError("the stored body is garbled")
        return parse(body)
    monkeypatch.setattr("bots.inbox.sqlite_journal.parse", parse_but_the_poison)
    server = served(INBOX_MAX_ATTEMPTS="2")
    server.inbox.journal.arrivals.parsed = Forgetful()
    replies = post_around_the_poison(server)

    letter = settled(server)
    assert letter["error"] == "could not read an accepted delivery: ValueError: the stored body is garbled"
    assert letter["what"] == "an unreadable delivery"
    assert sorted(sent_texts(graph_server)) == replies


def test_an_item_that_cannot_be_typed(bot, served, graph_server, monkeypatch):
    echo(bot)
    load_event = dispatch.load_event

    def load_but_the_poison(item: Item):
        if is_poison(item):
            raise RuntimeError("a bug in typing")
        return load_event(item)
    monkeypatch.setattr("bots.dispatch.load_event", load_but_the_poison)
    server = served(INBOX_MAX_ATTEMPTS="2")
    replies = post_around_the_poison(server)

    letter = settled(server)
    assert (letter["kind"], letter["attempts"], letter["error"]) == ("event", 2, "RuntimeError: a bug in typing")
    assert sorted(sent_texts(graph_server)) == replies


def test_an_item_whose_dedupe_key_cannot_be_made_is_still_answered_run_and_deduplicated(bot, served, graph_server,
                                                                                         monkeypatch):
    echo(bot)
    dedupe_key = Item.dedupe_key

    def key_but_the_poison(item: Item) -> str:
        if is_poison(item):
            raise KeyError("mid")
        return dedupe_key.fget(item)
    monkeypatch.setattr(Item, "dedupe_key", property(key_but_the_poison))
    server = served()
    poison = BUILD.message("poison", sender="1001", mid=POISON)
    for body in (BUILD.message("before", sender="1001"), poison, BUILD.message("after", sender="1001"), poison):
        assert server.post(body).status_code == 200  # the poison one twice: Workplace delivered it again

    wait_for(lambda: len(sent_texts(graph_server)) >= 3)
    wait_for(server.idle)
    assert sent_texts(graph_server) == ["re before", "re poison", "re after"]
    assert server.inbox.dead_letters() == []


def test_a_handler_that_always_fails(bot, served, graph_server):
    @bot.on_message()
    def reply(event, ctx):
        if event.mid == POISON:
            raise RuntimeError("the handler chokes on this one")
        ctx.reply(f"re {event.text}")

    server = served(INBOX_MAX_ATTEMPTS="3")
    replies = post_around_the_poison(server)

    letter = settled(server)
    assert (letter["attempts"], letter["error"]) == (3, "RuntimeError: the handler chokes on this one")
    assert sorted(sent_texts(graph_server)) == replies


def test_an_event_whose_finish_cannot_be_committed_fails_alone(bot, served, graph_server, monkeypatch):
    echo(bot)
    finish = SQLiteJournal.finish
    batches = []

    def finish_but_the_poison(self, finished):
        batches.append(len(finished))
        if any(is_poison(done.job.item) for done in finished):
            raise sqlite3.OperationalError("database or disk is full")
        return finish(self, finished)
    monkeypatch.setattr(SQLiteJournal, "finish", finish_but_the_poison)
    server = served(HANDLER_THREADS="1", INBOX_MAX_ATTEMPTS="2")
    together = batch(BUILD.message("poison", sender="1001", mid=POISON),
                     *(BUILD.message(f"with it {n}", sender=f"200{n}") for n in range(3)))
    assert server.post(together).status_code == 200
    assert server.post(BUILD.message("after", sender="1001")).status_code == 200

    letter = settled(server)
    assert (letter["attempts"], letter["error"]) == (2, "OperationalError: database or disk is full")
    assert sorted(sent_texts(graph_server)) == ["re after", "re with it 0", "re with it 1", "re with it 2"]
    assert batches[:5] == [4, 1, 1, 1, 1]  # finished with the others in one batch, then each on its own


def test_a_message_graph_refuses_for_good(bot, served, graph_server):
    echo(bot)

    @graph_server.before_request
    def refuse_the_poison():
        if ((request.get_json(silent=True) or {}).get("message") or {}).get("text") == "re poison":
            return jsonify({"error": {"message": "(#100) No matching user found", "code": 100}}), 400
        return None
    server = served()
    replies = post_around_the_poison(server)

    letter = settled(server)
    assert (letter["kind"], letter["what"]) == ("message", "POST me/messages")
    assert letter["error"] == "Graph API: (#100) No matching user found code=100 status=400"
    assert sorted(sent_texts(graph_server)) == replies


def test_a_signed_delivery_with_a_lone_surrogate_in_its_ids(bot, served, graph_server):
    echo(bot)
    server = served(INBOX_MAX_ATTEMPTS="2")
    odd = BUILD.message("odd", sender="m2\ud800", mid="m2\ud800")
    assert "\\ud800" in json.dumps(odd)  # sent as a JSON escape, as Workplace would

    assert server.post(odd).status_code == 200
    assert server.post(BUILD.message("normal")).status_code == 200

    wait_for(lambda: "re normal" in sent_texts(graph_server))
    wait_for(server.idle)
    letters = server.inbox.dead_letters()
    if letters:  # parked, with a reason
        assert len(letters) == 1 and letters[0]["error"] and sent_texts(graph_server) == ["re normal"]
    else:  # handled: the reply goes to the id as it came
        assert sorted(sent_texts(graph_server)) == ["re normal", "re odd"]
        assert {call["json"]["recipient"]["id"] for call in graph_server.calls} == {"m2\ud800", BUILD.sender}
