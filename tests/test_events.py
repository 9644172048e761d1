"""From a delivery to the typed event a handler receives: one fixture per topic/field of PROTOCOL.md
section 4 (tests/fixtures/<object>.<field>[.<variant>].json), redelivery keys, and malformed items."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bots import events as ev
from bots.envelope import Item, load_event, parse
from bots.errors import WebhookError

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_NAMES = sorted(path.name.removesuffix(".json") for path in FIXTURES.glob("*.json"))

PAGE = "105678357661487"
USER = "100071234567890"
COLLEAGUE = "100072345678901"
COMMUNITY = "1394518670594144"
GROUP = "1543267912783456"
POST = "1543267912783456_1729384756102938"
COMMENT = "1729384756102938_1730118452736110"


def delivery(name: str) -> dict:
    """The fixture ``tests/fixtures/<name>.json``, as data a test may change."""
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))


def events_of(document: dict) -> list[ev.Event]:
    """Every event of a delivery, typed, as the webhook hands them to handlers."""
    _, items = parse(json.dumps(document).encode())
    return [load_event(item) for item in items]


def event_of(document: dict) -> ev.Event:
    """The one event of a one-item delivery."""
    [event] = events_of(document)
    return event


def delivered_item(document: dict) -> dict:
    """The one ``messaging`` or ``changes`` item of a delivery, exactly as sent."""
    [entry] = document["entry"]
    [item] = entry.get("messaging") or entry["changes"]
    return item


# What each fixture must load into: the event class and the attributes a handler reads.
EXPECTED: dict[str, tuple[type[ev.Event], dict[str, Any]]] = {
    "page.messages": (ev.Message, {
        "object": "page", "field": "messages", "entry_id": PAGE, "time": 1700000000123,
        "sender_id": USER, "recipient_id": PAGE, "community_id": COMMUNITY, "thread_id": None,
        "is_group_chat": False, "mid": "m_Ab12Cd34", "text": "help", "payload": None, "is_echo": False,
        "timestamp": 1700000000000, "attachments": []}),
    "page.messages.group": (ev.Message, {
        "object": "page", "field": "messages", "sender_id": COLLEAGUE, "community_id": COMMUNITY,
        "thread_id": "t_6523408017749802", "is_group_chat": True, "mid": "m_Gr0up7hr3ad",
        "text": "@Helpdesk who is on call this week?"}),
    "page.messages.quick_reply": (ev.QuickReply, {
        "object": "page", "field": "messages", "sender_id": USER, "mid": "m_QuIcKr3pLy",
        "text": "Password reset", "payload": "TOPIC_PASSWORD"}),
    "page.messages.attachments": (ev.Message, {
        "object": "page", "field": "messages", "sender_id": USER, "mid": "m_At7aChM3nts", "text": None}),
    "page.messages.echo": (ev.Message, {
        "object": "page", "field": "messages", "is_echo": True, "sender_id": PAGE, "recipient_id": USER,
        "community_id": None, "mid": "m_Ech0Ec40", "text": "What do you need?"}),
    "page.messaging_postbacks": (ev.Postback, {
        "object": "page", "field": "messaging_postbacks", "sender_id": USER, "community_id": COMMUNITY,
        "mid": "m_P0stBaCk", "title": "Get Started", "text": "Get Started", "payload": "GET_STARTED"}),
    "page.message_deliveries": (ev.Delivery, {
        "object": "page", "field": "message_deliveries", "sender_id": USER, "mid": None,
        "mids": ["m_Ech0Ec40", "m_Ech0Ec41"], "watermark": 1700000001400}),
    "page.message_reads": (ev.Read, {
        "object": "page", "field": "message_reads", "sender_id": USER, "mid": None, "watermark": 1700000001400}),
    "page.mention": (ev.Mention, {
        "object": "page", "field": "mention", "entry_id": PAGE, "time": 1700000300, "item": "post", "verb": "add",
        "sender_id": COLLEAGUE, "community_id": COMMUNITY, "post_id": POST, "comment_id": None,
        "text": "@[105678357661487] the VPN is down again",
        "message_tags": [{"id": PAGE, "name": "Helpdesk", "type": "page", "offset": 0, "length": 8}],
        "permalink_url": f"https://acme.workplace.com/groups/{GROUP}/permalink/1729384756102938/"}),
    "page.mention.comment": (ev.Mention, {
        "object": "page", "field": "mention", "item": "comment", "verb": "add", "sender_id": USER,
        "post_id": POST, "comment_id": COMMENT, "text": "@[105678357661487] same here, can you check?"}),
    "group.posts": (ev.GroupPost, {
        "object": "group", "field": "posts", "entry_id": GROUP, "verb": "add", "sender_id": COLLEAGUE,
        "community_id": COMMUNITY, "post_id": POST, "type": "status", "target_type": "group",
        "text": "Q3 planning doc is up: https://docs.example.com/d/abc123",
        "created_time": "2023-11-14T22:20:00+0000",
        "attachments": {"data": [{"type": "share", "url": "https://docs.example.com/d/abc123",
                                  "title": "Q3 planning"}]}}),
    "group.comments": (ev.GroupComment, {
        "object": "group", "field": "comments", "entry_id": GROUP, "verb": "add", "sender_id": USER,
        "comment_id": COMMENT, "post_id": POST, "text": "Thanks, I added my notes.",
        "created_time": "2023-11-14T22:21:00+0000"}),
    "group.membership": (ev.Membership, {
        "object": "group", "field": "membership", "entry_id": GROUP, "verb": "add", "community_id": COMMUNITY,
        "member_id": "100074567890123", "actor_id": COLLEAGUE, "sender_id": COLLEAGUE,
        "update_time": "2023-11-14T22:22:00+0000"}),
    "user.status": (ev.UserChange, {
        "object": "user", "field": "status", "entry_id": USER, "sender_id": USER, "verb": "update",
        "community_id": COMMUNITY}),
    "user.events": (ev.UserChange, {
        "object": "user", "field": "events", "entry_id": USER, "sender_id": USER, "verb": "add",
        "community_id": COMMUNITY}),
    "workplace_security.admin_activity": (ev.SecurityEvent, {
        "object": "workplace_security", "field": "admin_activity", "entry_id": COMMUNITY,
        "event_name": "ADMIN_DEACTIVATE_ACCOUNT", "actor_id": "100073456789012", "sender_id": "100073456789012",
        "target_id": "100075678901234", "ip": "203.0.113.7"}),
    "workplace_security.sessions": (ev.SecurityEvent, {
        "object": "workplace_security", "field": "sessions", "event_name": "LOG_IN", "actor_id": None,
        "sender_id": None, "target_id": USER, "ip": "198.51.100.23"}),
    "link.preview": (ev.LinkRequest, {
        "object": "link", "field": "preview", "entry_id": None, "time": 1700000007,
        "link": "https://docs.example.com/d/abc123", "viewer_id": USER, "sender_id": USER,
        "community_id": "987654321012345"}),
    "link.collection": (ev.LinkRequest, {
        "object": "link", "field": "collection", "link": None, "viewer_id": USER,
        "community_id": "987654321012345"}),
    "messenger.messages": (ev.Message, {
        "object": "page", "field": "messages", "entry_id": "1067280970047460", "time": 1458692752478,
        "sender_id": "1254459154682919", "recipient_id": "1067280970047460", "community_id": None,
        "thread_id": None, "mid": "mid.1457764197618:41d102a3e1ae206a38", "text": "hello, world!"}),
}


def test_every_fixture_has_expectations_and_every_expectation_a_fixture():
    assert sorted(EXPECTED) == FIXTURE_NAMES


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_loads_into_its_typed_event(name):
    cls, attributes = EXPECTED[name]
    event = event_of(delivery(name))
    assert type(event) is cls
    assert {key: getattr(event, key) for key in attributes} == attributes


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_raw_is_the_item_exactly_as_delivered(name):
    document = delivery(name)
    assert event_of(document).raw == delivered_item(document)


@pytest.mark.parametrize("name, path, value", [
    ("page.messages", ["message", "nlp", "detected_locales", 0, "locale"], "en_XX"),
    ("page.messages.echo", ["message", "app_id"], 1517776481860111),
    ("page.messages.echo", ["message", "metadata"], "helpdesk:welcome"),
    ("group.posts", ["value", "formatting"], "MARKDOWN"),
    ("workplace_security.admin_activity", ["value", "target_type"], "USER"),
    ("user.status", ["value", "status", "text"], "Out of office until Monday"),
])
def test_unknown_fields_are_kept_in_raw(name, path, value):
    found: Any = event_of(delivery(name)).raw
    for key in path:
        found = found[key]
    assert found == value


def test_unknown_fields_of_a_change_are_kept_in_its_value_too():
    post = event_of(delivery("group.posts"))
    assert post.value["formatting"] == "MARKDOWN"
    assert post.value["from"]["name"] == "Dana Reyes"


def test_attachments_carry_their_type_and_url():
    message = event_of(delivery("page.messages.attachments"))
    assert [(a.type, a.url) for a in message.attachments] == [
        ("image", "https://scontent.xx.fbcdn.net/v/t1.15752-9/screenshot.png"),
        ("file", "https://cdn.fbsbx.com/v/t59.2708-21/vpn-log.txt"),
    ]
    assert message.attachments[1].raw == delivered_item(delivery("page.messages.attachments"))["message"][
        "attachments"][1]


def test_a_quick_reply_is_also_a_message():
    event = event_of(delivery("page.messages.quick_reply"))
    assert isinstance(event, ev.Message)
    assert event.kinds == ("quick_reply", "message", "any")


# --- dedupe keys: a redelivery must be recognised, a different event must not -------------------------

def redelivered(document: dict) -> dict:
    """The same delivery as Meta sends it again after a time-out: same items, a later entry time."""
    again = copy.deepcopy(document)
    for entry in again["entry"]:
        entry["time"] += 60_000
    return again


def test_the_same_message_twice_has_the_same_dedupe_key():
    first = event_of(delivery("page.messages"))
    again = event_of(redelivered(delivery("page.messages")))
    assert first.dedupe_key == again.dedupe_key


def test_messages_with_different_mids_have_different_dedupe_keys():
    document = delivery("page.messages")
    other = copy.deepcopy(document)
    other["entry"][0]["messaging"][0]["message"]["mid"] = "m_Zz99Yy88"
    assert event_of(document).dedupe_key != event_of(other).dedupe_key


@pytest.mark.parametrize("name", ["page.message_deliveries", "page.message_reads"])
def test_receipts_without_a_mid_are_deduplicated_by_content(name):
    document = delivery(name)
    later = copy.deepcopy(document)
    later["entry"][0]["messaging"][0]["timestamp"] += 5_000
    assert event_of(document).dedupe_key == event_of(redelivered(document)).dedupe_key
    assert event_of(document).dedupe_key != event_of(later).dedupe_key


def test_the_same_change_in_another_batch_has_the_same_dedupe_key():
    document = delivery("group.comments")
    value = delivered_item(document)["value"]
    shuffled = dict(reversed(list(value.items())))  # same JSON object, keys in another order
    other_entry = {"id": GROUP, "time": 1700009999,
                   "changes": [{"field": "posts", "value": {"verb": "add", "post_id": POST}},
                               {"field": "comments", "value": shuffled}]}
    batch = {"object": "group", "entry": [{"id": "1111111111111111", "time": 1700009999, "changes": []},
                                          other_entry]}
    first = event_of(document)
    again = events_of(batch)[-1]
    assert again.comment_id == first.comment_id
    assert again.dedupe_key == first.dedupe_key


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: d["entry"][0]["changes"][0]["value"].update(verb="edit"), id="another verb"),
    pytest.param(lambda d: d["entry"][0]["changes"][0]["value"].update(message="Edited"), id="another text"),
    pytest.param(lambda d: d["entry"][0].update(id="1999999999999999"), id="another group"),
    pytest.param(lambda d: d.update(object="page"), id="another object"),
])
def test_a_different_change_has_a_different_dedupe_key(change):
    document = delivery("group.comments")
    other = copy.deepcopy(document)
    change(other)
    assert event_of(document).dedupe_key != event_of(other).dedupe_key


def test_a_change_of_another_field_with_the_same_value_has_a_different_dedupe_key():
    document = delivery("group.comments")
    other = copy.deepcopy(document)
    other["entry"][0]["changes"][0]["field"] = "posts"
    assert event_of(document).dedupe_key != event_of(other).dedupe_key


# --- malformed items: the envelope is fine, the item is not --------------------------------------------

def chat(item: dict) -> dict:
    return {"object": "page", "entry": [{"id": PAGE, "time": 1700000000123, "messaging": [item]}]}


def change(object: str, field: str, value: Any) -> dict:
    return {"object": object, "entry": [{"id": GROUP, "time": 1700000000, "changes": [
        {"field": field, "value": value}]}]}


SENDER = {"id": USER, "community": {"id": COMMUNITY}}
PREVIEW = {"community": {"id": COMMUNITY}, "user": {"id": USER}, "link": "https://docs.example.com/d/abc123"}


@pytest.mark.parametrize("document, field", [
    pytest.param(chat({"sender": {"community": {"id": COMMUNITY}}, "message": {"mid": "m_1", "text": "hi"}}),
                 "entry[0].messaging[0].sender.id", id="messaging without sender.id"),
    pytest.param(chat({"recipient": {"id": PAGE}, "message": {"mid": "m_1", "text": "hi"}}),
                 "entry[0].messaging[0].sender", id="messaging without sender"),
    pytest.param(chat({"sender": {"id": True}, "message": {"text": "hi"}}),
                 "entry[0].messaging[0].sender.id", id="sender id not an id"),
    pytest.param(chat({"sender": SENDER, "message": {"text": ["hi"]}}),
                 "entry[0].messaging[0].message.text", id="message text not a string"),
    pytest.param(chat({"sender": SENDER, "message": {"text": "Yes", "quick_reply": {}}}),
                 "entry[0].messaging[0].message.quick_reply.payload", id="quick reply without payload"),
    pytest.param(chat({"sender": SENDER, "message": {"attachments": [{"payload": {"url": "https://x"}}]}}),
                 "entry[0].messaging[0].message.attachments[0].type", id="attachment without type"),
    pytest.param(chat({"sender": SENDER, "thread": {"id": ""}, "message": {"text": "hi"}}),
                 "entry[0].messaging[0].thread.id", id="empty thread id"),
    pytest.param(change("page", "mention", "@Helpdesk help"),
                 "entry[0].changes[0].value", id="mention value not an object"),
    pytest.param(change("page", "mention", {"item": "post", "from": {"name": "Dana"}}),
                 "entry[0].changes[0].value.from.id", id="mention from without id"),
    pytest.param(change("group", "membership", {"verb": "add", "member": {"id": ""}}),
                 "entry[0].changes[0].value.member.id", id="membership with empty member id"),
    pytest.param(change("workplace_security", "sessions", {"event": "LOG_IN", "target_id": {"id": USER}}),
                 "entry[0].changes[0].value.target_id", id="security target_id not an id"),
    pytest.param(change("link", "preview", {k: v for k, v in PREVIEW.items() if k != "link"}),
                 "entry[0].changes[0].value.link", id="link preview without link"),
    pytest.param(change("link", "preview", {k: v for k, v in PREVIEW.items() if k != "user"}),
                 "entry[0].changes[0].value.user", id="link preview without viewer"),
    pytest.param(change("link", "collection", {"community": {"id": COMMUNITY}}),
                 "entry[0].changes[0].value.user", id="link collection without viewer"),
])
def test_a_malformed_item_is_refused_with_400_naming_its_field(document, field):
    _, [item] = parse(json.dumps(document).encode())  # the envelope itself is fine
    with pytest.raises(WebhookError) as refused:
        load_event(item)
    assert refused.value.status == 400
    assert refused.value.field == field
    assert refused.value.message
    assert refused.value.to_dict()["error"]["field"] == field


def test_a_malformed_item_does_not_spoil_the_rest_of_its_batch():
    good = delivered_item(delivery("page.messages"))
    bad = {"sender": {"name": "nobody"}, "message": {"mid": "m_bad", "text": "?"}}
    document = {"object": "page", "entry": [
        {"id": PAGE, "time": 1700000000123, "messaging": [good]},
        {"id": PAGE, "time": 1700000000456, "messaging": [good, bad]},
    ]}
    _, items = parse(json.dumps(document).encode())
    assert [load_event(item).text for item in items[:2]] == ["help", "help"]
    with pytest.raises(WebhookError) as refused:
        load_event(items[2])
    assert refused.value.field == "entry[1].messaging[1].sender.id"


def test_an_item_read_back_from_the_inbox_reports_its_original_path():
    bad = chat({"sender": {}, "message": {"text": "hi"}})
    _, [item] = parse(json.dumps(bad).encode())
    stored = Item.from_dict(json.loads(json.dumps(item.to_dict())))
    with pytest.raises(WebhookError) as refused:
        load_event(stored)
    assert refused.value.field == "entry[0].messaging[0].sender.id"
