"""Messenger's chat plugin guests: a sender known only by ``user_ref`` (no id) reaches its handler, has a
conversation of its own, and is answered through ``recipient.user_ref``."""

from __future__ import annotations

import json

import pytest

from bots.actions import recipient
from bots.deliveries import PAGE_ID, Deliveries
from bots.envelope import Item, load_event, parse
from bots.errors import WebhookError
from bots.events import Message, Postback
from bots.inbox.journal import conversation_of
from tests.support import wait_for

GUEST = "chat-plugin-ref-7f3a"


def only_item(body: dict) -> Item:
    """The one item of a delivery body, as the webhook queues it."""
    return parse(json.dumps(body).encode())[1][0]


def messaging(sender: object) -> Item:
    """A message item whose ``sender`` is exactly ``sender``."""
    data = {"sender": sender, "recipient": {"id": PAGE_ID}, "timestamp": 1, "message": {"mid": "m_1", "text": "hi"}}
    return Item("page", PAGE_ID, 1.0, "messaging", data, "entry[0].messaging[0]")


@pytest.fixture
def answering(bot):
    """A bot that records what reached it and answers every message and postback."""
    bot.seen = []

    @bot.on_message()
    def message(event, ctx):
        bot.seen.append(event)
        ctx.reply(f"got {event.text}")

    @bot.on_postback("GET_STARTED")
    def started(event, ctx):
        bot.seen.append(event)
        ctx.reply("welcome")

    return bot


# --- typing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [lambda d: d.message("hi", user_ref=GUEST),
                                   lambda d: d.postback("GET_STARTED", user_ref=GUEST)])
def test_a_guest_item_is_typed_with_its_user_ref_and_no_sender_id(build):
    body = build(Deliveries())
    assert body["entry"][0]["messaging"][0]["sender"] == {"user_ref": GUEST}
    event = load_event(only_item(body))
    assert isinstance(event, (Message, Postback))
    assert event.user_ref == GUEST and event.sender_id is None


def test_a_person_has_a_sender_id_and_no_user_ref():
    event = load_event(only_item(Deliveries().message("hi", sender="555")))
    assert event.sender_id == "555" and event.user_ref is None


@pytest.mark.parametrize("sender, field", [
    ({}, "entry[0].messaging[0].sender.id"),
    ({"community": {"id": "1"}}, "entry[0].messaging[0].sender.id"),
    ({"id": None, "user_ref": None}, "entry[0].messaging[0].sender.id"),
    ({"id": "555", "user_ref": GUEST}, "entry[0].messaging[0].sender"),
    ({"user_ref": ""}, "entry[0].messaging[0].sender.user_ref"),
    ({"user_ref": 7}, "entry[0].messaging[0].sender.user_ref"),
])
def test_a_sender_needs_exactly_one_of_id_and_user_ref(sender, field):
    with pytest.raises(WebhookError) as error:
        load_event(messaging(sender))
    assert error.value.field == field


def test_both_given_is_refused_by_name():
    with pytest.raises(WebhookError, match="either id or user_ref, not both"):
        load_event(messaging({"id": "555", "user_ref": GUEST}))


def test_deliveries_refuse_a_sender_with_both():
    with pytest.raises(ValueError, match="not both"):
        Deliveries().message("hi", sender="555", user_ref=GUEST)


# --- conversations --------------------------------------------------------------------------------------

def test_a_guest_has_a_conversation_of_its_own():
    build = Deliveries()
    guest = only_item(build.message("hi", user_ref=GUEST))
    assert guest.conversation_key == conversation_of(guest) == f"user_ref:{GUEST}"
    assert only_item(build.postback("GET_STARTED", user_ref=GUEST)).conversation_key == f"user_ref:{GUEST}"
    assert only_item(build.message("hi", user_ref="other")).conversation_key == "user_ref:other"
    assert only_item(build.message("hi", sender=GUEST)).conversation_key == f"user:{GUEST}"


def test_a_guest_without_an_entry_id_is_still_its_own_conversation():
    item = messaging({"user_ref": GUEST})._replace(entry_id=None)
    assert item.conversation_key == f"user_ref:{GUEST}"


def test_a_guest_in_a_group_chat_is_in_the_thread():
    assert only_item(Deliveries().message("hi", user_ref=GUEST, thread="t_1")).conversation_key == "thread:t_1"


# --- answering ------------------------------------------------------------------------------------------

def test_a_guest_message_and_postback_reach_their_handlers_and_are_answered_by_user_ref(tester, answering):
    tester.message("hello", user_ref=GUEST)
    tester.postback("GET_STARTED", user_ref=GUEST)
    assert [(type(e).__name__, e.user_ref, e.sender_id) for e in answering.seen] == [
        ("Message", GUEST, None), ("Postback", GUEST, None)]
    assert [(r.recipient, r.text) for r in tester.replies] == [
        ({"user_ref": GUEST}, "got hello"), ({"user_ref": GUEST}, "welcome")]
    assert [o.status.value for o in tester.outcomes] == ["handled", "handled"]


def test_a_guest_is_not_the_bot_itself(tester, answering):
    runtime = tester.app.extensions["bots"].runtimes["demo"]
    tester.message("hello", user_ref=GUEST)
    assert not runtime.is_own(answering.seen[-1])


def test_send_and_typing_without_a_target_go_to_the_guest(tester, bot):
    @bot.on_message()
    def handle(event, ctx):
        ctx.typing()
        ctx.send("one")
        ctx.send("two", to="555")

    tester.message("hi", user_ref=GUEST)
    assert [call.body["recipient"] for call in tester.calls] == [{"user_ref": GUEST}, {"user_ref": GUEST},
                                                                 {"id": "555"}]
    assert tester.calls[0].body["sender_action"] == "typing_on"


def test_a_guest_in_a_group_chat_is_answered_in_the_thread(tester, answering):
    tester.message("hello", user_ref=GUEST, thread="t_100200")
    assert tester.replies[-1].recipient == {"thread_key": "t_100200"}


def test_bot_graph_sends_to_a_user_ref():
    assert recipient(None, None, None, GUEST) == {"user_ref": GUEST}
    with pytest.raises(ValueError, match="exactly one of to=, ids=, thread= or user_ref="):
        recipient("555", None, None, GUEST)
    with pytest.raises(ValueError, match="user_ref"):
        recipient(None, None, None, 7)  # type: ignore[arg-type]


def test_a_guest_is_answered_through_the_durable_inbox(answering, served, graph_server):
    app = served()
    build = Deliveries()
    assert app.post(build.message("hello", user_ref=GUEST)).status_code == 200
    assert app.post(build.postback("GET_STARTED", user_ref=GUEST)).status_code == 200
    wait_for(lambda: len(graph_server.calls) == 2 and app.idle())
    assert [(call["path"], call["json"]["recipient"], call["json"]["message"]["text"])
            for call in graph_server.calls] == [("me/messages", {"user_ref": GUEST}, "got hello"),
                                                ("me/messages", {"user_ref": GUEST}, "welcome")]
    assert [(e.user_ref, e.sender_id) for e in answering.seen] == [(GUEST, None), (GUEST, None)]


def test_each_guest_keeps_its_own_state_and_a_redelivery_is_handled_once(bot, served, graph_server):
    @bot.on_postback()
    def count(event, ctx):
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        ctx.reply(str(ctx.state["n"]))

    app = served()
    build = Deliveries()
    first = build.postback("TAP", user_ref=GUEST)
    for body in (first, first, build.postback("TAP", user_ref=GUEST), build.postback("TAP", user_ref="other"),
                 build.postback("TAP", sender=GUEST)):
        assert app.post(body).status_code == 200
        wait_for(app.idle)
    answers = [(tuple(call["json"]["recipient"].items()), call["json"]["message"]["text"])
               for call in graph_server.calls]
    assert answers == [((("user_ref", GUEST),), "1"), ((("user_ref", GUEST),), "2"),
                       ((("user_ref", "other"),), "1"), ((("id", GUEST),), "1")]
