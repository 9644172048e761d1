"""Splitting a delivery into items: batches, paths, conversation keys, the inbox format, and the
bodies that are refused with a 400 naming the field (PROTOCOL.md section 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots import events as ev
from bots.envelope import Item, depth, load_event, parse
from bots.errors import WebhookError

FIXTURES = Path(__file__).parent / "fixtures"

PAGE = "105678357661487"
USER = "100071234567890"
COLLEAGUE = "100072345678901"
COMMUNITY = "1394518670594144"
GROUP = "1543267912783456"
POST = "1543267912783456_1729384756102938"
THREAD = "t_6523408017749802"


def delivery(name: str) -> dict:
    """The fixture ``tests/fixtures/<name>.json`` as data."""
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))


def only_item(name: str) -> dict:
    """The one ``messaging`` or ``changes`` item of a fixture."""
    [entry] = delivery(name)["entry"]
    [item] = entry.get("messaging") or entry["changes"]
    return item


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def text(sender: str, words: str, mid: str, thread: str | None = None) -> dict:
    """A chat message item from ``sender``; in a group chat when ``thread`` is given."""
    item = {"sender": {"id": sender, "community": {"id": COMMUNITY}}, "recipient": {"id": PAGE},
            "timestamp": 1700000000000, "message": {"mid": mid, "text": words}}
    if thread:
        item["thread"] = {"id": thread}
    return item


def page_batch() -> dict:
    """Two entries of a page delivery, each with several chat items; the first also with a mention."""
    return {"object": "page", "entry": [
        {"id": PAGE, "time": 1700000000123,
         "messaging": [text(USER, "one", "m_1"), text(COLLEAGUE, "two", "m_2", thread=THREAD)],
         "changes": [only_item("page.mention")]},
        {"id": PAGE, "time": 1700000000456,
         "messaging": [text(COLLEAGUE, "three", "m_3"), only_item("page.message_reads"), text(USER, "four", "m_4")]},
    ]}


def group_batch() -> dict:
    """Two groups' changes in one delivery: a post and a comment on it, then a new member elsewhere."""
    return {"object": "group", "entry": [
        {"id": GROUP, "time": 1700000400, "changes": [only_item("group.posts"), only_item("group.comments")]},
        {"id": "1600000000000001", "time": 1700000401, "changes": [only_item("group.membership")]},
    ]}


# --- batches --------------------------------------------------------------------------------------------

def test_parse_returns_the_object_and_every_item_of_every_entry_in_order():
    topic, items = parse(encode(page_batch()))
    assert topic == "page"
    assert [(item.path, item.kind, item.entry_id) for item in items] == [
        ("entry[0].messaging[0]", "messaging", PAGE),
        ("entry[0].messaging[1]", "messaging", PAGE),
        ("entry[0].changes[0]", "changes", PAGE),
        ("entry[1].messaging[0]", "messaging", PAGE),
        ("entry[1].messaging[1]", "messaging", PAGE),
        ("entry[1].messaging[2]", "messaging", PAGE),
    ]
    assert [type(load_event(item)).__name__ for item in items] == [
        "Message", "Message", "Mention", "Message", "Read", "Message"]
    assert [load_event(item).text for item in items if item.kind == "messaging"] == [
        "one", "two", "three", None, "four"]


def test_each_item_keeps_the_time_of_its_own_entry():
    _, items = parse(encode(page_batch()))
    assert [item.time for item in items] == [1700000000123] * 3 + [1700000000456] * 3


def test_chat_items_are_one_conversation_per_thread_or_per_person():
    _, items = parse(encode(page_batch()))
    assert [item.conversation_key for item in items] == [
        f"user:{USER}", f"thread:{THREAD}", f"post:{POST}", f"user:{COLLEAGUE}", f"user:{USER}", f"user:{USER}"]


def test_a_post_and_its_comments_are_one_conversation():
    topic, items = parse(encode(group_batch()))
    assert topic == "group"
    assert [item.path for item in items] == ["entry[0].changes[0]", "entry[0].changes[1]", "entry[1].changes[0]"]
    assert [item.conversation_key for item in items] == [
        f"post:{POST}", f"post:{POST}", "group:1600000000000001"]


def test_a_mention_in_a_comment_belongs_to_the_posts_conversation():
    _, [item] = parse(encode(delivery("page.mention.comment")))
    assert item.conversation_key == f"post:{POST}"


def test_an_echo_belongs_to_the_conversation_with_the_person_it_was_sent_to():
    _, [echo] = parse(encode(delivery("page.messages.echo")))
    _, [message] = parse(encode(delivery("page.messages")))
    assert echo.conversation_key == message.conversation_key == f"user:{USER}"


def test_an_empty_delivery_has_no_items():
    assert parse(b'{"object": "page", "entry": []}') == ("page", [])
    assert parse(encode({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": None}]})) == ("page", [])


# --- the inbox format -----------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [page_batch, group_batch])
def test_an_item_survives_the_trip_through_json_unchanged(batch):
    _, items = parse(encode(batch()))
    for item in items:
        stored = json.dumps(item.to_dict())
        back = Item.from_dict(json.loads(stored))
        assert back == item
        assert back.conversation_key == item.conversation_key
        assert load_event(back).dedupe_key == load_event(item).dedupe_key


def test_to_dict_names_every_field_of_an_item():
    _, [item] = parse(encode(delivery("page.messages")))
    assert item.to_dict() == {"object": "page", "entry_id": PAGE, "time": 1700000000123, "kind": "messaging",
                              "data": only_item("page.messages"), "path": "entry[0].messaging[0]"}


# --- bodies that are refused ----------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    pytest.param(b"\xff\xfe{}", "not UTF-8", id="not UTF-8"),
    pytest.param(b"{not json", "not JSON", id="not JSON"),
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b'[{"object": "page", "entry": []}]', "JSON object", id="JSON array"),
    pytest.param(b'"page"', "JSON object", id="JSON string"),
])
def test_a_body_that_is_not_a_json_object_is_refused_with_400(body, message):
    with pytest.raises(WebhookError) as refused:
        parse(body)
    assert refused.value.status == 400
    assert message in refused.value.message
    assert refused.value.field is None  # the body as a whole is wrong, not one field of it


@pytest.mark.parametrize("document, field", [
    pytest.param({"entry": []}, "object", id="missing object"),
    pytest.param({"object": 7, "entry": []}, "object", id="object not a string"),
    pytest.param({"object": "page"}, "entry", id="missing entry"),
    pytest.param({"object": "page", "entry": {"id": PAGE}}, "entry", id="entry not a list"),
    pytest.param({"object": "page", "entry": [{"id": PAGE}, 3]}, "entry[1]", id="entry item not an object"),
    pytest.param({"object": "page", "entry": [{"id": True}]}, "entry[0].id", id="entry id not an id"),
    pytest.param({"object": "page", "entry": [{"time": "noon"}]}, "entry[0].time", id="time not a number"),
    pytest.param({"object": "page", "entry": [{"messaging": {"sender": {"id": USER}}}]}, "entry[0].messaging",
                 id="messaging not a list"),
    pytest.param({"object": "page", "entry": [{"messaging": [text(USER, "hi", "m_1"), "hi"]}]},
                 "entry[0].messaging[1]", id="messaging item not an object"),
    pytest.param({"object": "group", "entry": [{"changes": {"field": "posts", "value": {}}}]}, "entry[0].changes",
                 id="changes not a list"),
    pytest.param({"object": "group", "entry": [{"changes": [["posts"]]}]}, "entry[0].changes[0]",
                 id="changes item not an object"),
    pytest.param({"object": "group", "entry": [{}, {"changes": [{"field": "posts", "value": {}}, {"value": {}}]}]},
                 "entry[1].changes[1].field", id="changes item without field"),
    pytest.param({"object": "group", "entry": [{"changes": [{"field": "posts"}]}]}, "entry[0].changes[0].value",
                 id="changes item without value"),
    pytest.param({"object": "group", "entry": [{"changes": [{"field": "posts", "value": None}]}]},
                 "entry[0].changes[0].value", id="changes item with null value"),
])
def test_json_that_is_not_an_envelope_is_refused_with_400_naming_the_field(document, field):
    with pytest.raises(WebhookError) as refused:
        parse(encode(document))
    assert refused.value.status == 400
    assert refused.value.field == field
    assert refused.value.to_dict() == {"error": {"message": refused.value.message, "field": field}}


# --- numbers and ids as senders write them --------------------------------------------------------------

@pytest.mark.parametrize("name, time", [
    ("page.messages", 1700000000123),  # messaging entries: milliseconds
    ("group.posts", 1700000400),       # changes entries: seconds
])
def test_entry_time_in_seconds_or_milliseconds_is_taken_as_it_is(name, time):
    _, [item] = parse(encode(delivery(name)))
    assert item.time == time
    assert load_event(item).time == time


def test_an_entry_without_time_has_none():
    document = delivery("page.messages")
    del document["entry"][0]["time"]
    assert load_event(parse(encode(document))[1][0]).time is None


def test_ids_given_as_numbers_are_loaded_as_strings_in_a_chat_item():
    document = {"object": "page", "entry": [{"id": int(PAGE), "time": 1700000000123, "messaging": [{
        "sender": {"id": int(USER), "community": {"id": int(COMMUNITY)}}, "recipient": {"id": int(PAGE)},
        "timestamp": 1700000000000, "message": {"mid": "m_Ab12Cd34", "text": "help"}}]}]}
    _, [item] = parse(encode(document))
    message = load_event(item)
    assert (item.entry_id, message.entry_id) == (PAGE, PAGE)
    assert (message.sender_id, message.recipient_id, message.community_id) == (USER, PAGE, COMMUNITY)
    assert item.conversation_key == f"user:{USER}"


@pytest.mark.parametrize("object, field, value, attributes", [
    ("group", "membership", {"verb": "add", "member": {"id": 100074567890123}, "actor": {"id": int(COLLEAGUE)},
                             "community": {"id": int(COMMUNITY)}},
     {"member_id": "100074567890123", "actor_id": COLLEAGUE, "community_id": COMMUNITY}),
    ("group", "comments", {"verb": "add", "comment_id": 1730118452736110, "post_id": 1729384756102938,
                           "from": {"id": int(USER)}},
     {"comment_id": "1730118452736110", "post_id": "1729384756102938", "sender_id": USER}),
    ("workplace_security", "admin_activity", {"event": "ADMIN_DEACTIVATE_ACCOUNT", "actor_id": 100073456789012,
                                              "target_id": 100075678901234},
     {"actor_id": "100073456789012", "target_id": "100075678901234"}),
    ("link", "preview", {"user": {"id": int(USER)}, "link": "https://docs.example.com/d/abc123"},
     {"viewer_id": USER}),
])
def test_ids_given_as_numbers_are_loaded_as_strings_in_a_change(object, field, value, attributes):
    document = {"object": object, "entry": [{"id": int(GROUP), "time": 1700000000,
                                             "changes": [{"field": field, "value": value}]}]}
    _, [item] = parse(encode(document))
    event = load_event(item)
    assert event.entry_id == GROUP
    assert {key: getattr(event, key) for key in attributes} == attributes


# --- what this version does not know yet ---------------------------------------------------------------

@pytest.mark.parametrize("object, field, value, expected_value, verb", [
    pytest.param("calendar", "events", {"verb": "add", "event_id": "42"}, {"verb": "add", "event_id": "42"}, "add",
                 id="unknown object"),
    pytest.param("page", "feed", {"verb": "edit", "post_id": POST}, {"verb": "edit", "post_id": POST}, "edit",
                 id="unknown field of a known object"),
    pytest.param("group", "mention", {"item": "post", "post_id": POST}, {"item": "post", "post_id": POST}, None,
                 id="known field under another object"),
    pytest.param("group", "reactions", "like", {"value": "like"}, None, id="value that is not an object"),
])
def test_an_unknown_object_or_field_becomes_a_plain_change(object, field, value, expected_value, verb):
    change = {"field": field, "value": value, "extra": {"kept": True}}
    _, [item] = parse(encode({"object": object, "entry": [{"id": GROUP, "time": 1700000000,
                                                             "changes": [change]}]}))
    event = load_event(item)
    assert type(event) is ev.Change
    assert (event.object, event.field, event.entry_id) == (object, field, GROUP)
    assert event.value == expected_value
    assert event.verb == verb
    assert event.raw == change


@pytest.mark.parametrize("kind, body", [
    ("reaction", {"reaction": "love", "emoji": "\u2764\ufe0f", "action": "react", "mid": "m_Ab12Cd34"}),
    ("optin", {"ref": "onboarding", "user_ref": "u-77"}),
])
def test_an_unknown_chat_item_becomes_a_plain_messaging_event(kind, body):
    item = {"sender": {"id": USER, "community": {"id": COMMUNITY}}, "recipient": {"id": PAGE},
            "timestamp": 1700000000000, kind: body}
    _, [parsed] = parse(encode({"object": "page", "entry": [{"id": PAGE, "time": 1700000000123,
                                                              "messaging": [item]}]}))
    event = load_event(parsed)
    assert type(event) is ev.MessagingEvent
    assert (event.object, event.field) == ("page", kind)
    assert (event.sender_id, event.recipient_id, event.community_id) == (USER, PAGE, COMMUNITY)
    assert event.raw[kind] == body
    assert parsed.conversation_key == f"user:{USER}"


def test_an_unknown_messaging_kind_is_named_after_the_kind_not_an_extra_field():
    item = {"sender": {"id": USER}, "recipient": {"id": PAGE}, "timestamp": 1, "priority": "high",
            "reaction": {"reaction": "like", "mid": "m_1"}}
    _, [parsed] = parse(encode({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [item]}]}))
    assert load_event(parsed).field == "reaction"


LINK = "https://docs.example.com/d/q3-plan"


def link_item(value: object, field: str = "preview") -> Item:
    """A ``link`` change as :func:`parse` hands it on."""
    return Item("link", None, 1700000007.0, "changes", {"field": field, "value": value}, "entry[0].changes[0]")


@pytest.mark.parametrize("value, expected", [
    ({"community": {"id": COMMUNITY}, "user": {"id": USER}, "link": LINK}, (LINK, USER, COMMUNITY)),
    ({"user": {"id": USER}, "link": LINK, "verb": "add", "extra": [1]}, (LINK, USER, None)),
    ({"community": None, "user": {"id": USER}, "link": LINK}, (LINK, USER, None)),
    ({"community": {"id": int(COMMUNITY)}, "user": {"id": int(USER)}, "link": LINK}, (LINK, USER, COMMUNITY)),
])
def test_a_link_request_types_the_same_in_its_usual_form_and_through_the_schema(value, expected):
    event = load_event(link_item(value))
    assert type(event) is ev.LinkRequest
    assert (event.link, event.viewer_id, event.community_id) == expected
    assert (event.object, event.field, event.entry_id, event.time) == ("link", "preview", None, 1700000007.0)
    assert event.value is value and event.raw == {"field": "preview", "value": value}
    assert event.verb == value.get("verb")


def test_a_collection_request_may_come_without_a_link():
    event = load_event(link_item({"user": {"id": USER}}, field="collection"))
    assert (type(event), event.field, event.link, event.viewer_id) == (ev.LinkRequest, "collection", None, USER)


@pytest.mark.parametrize("value, field", [
    ({"user": {"id": USER}}, "entry[0].changes[0].value.link"),
    ({"user": {"id": USER}, "link": None}, "entry[0].changes[0].value.link"),
    ({"user": {"id": USER}, "link": 5}, "entry[0].changes[0].value.link"),
    ({"link": LINK}, "entry[0].changes[0].value.user"),
    ({"user": {"id": ""}, "link": LINK}, "entry[0].changes[0].value.user.id"),
    ({"user": {"id": USER}, "community": {}, "link": LINK}, "entry[0].changes[0].value.community.id"),
])
def test_a_link_request_out_of_shape_is_refused_naming_the_field(value, field):
    with pytest.raises(WebhookError) as refused:
        load_event(link_item(value))
    assert (refused.value.status, refused.value.field) == (400, field)


def test_depth_counts_nesting_but_not_brackets_inside_strings():
    assert depth(b'{"a": [1, {"b": "[[[{{{\\"]]"}]}') == 3
    assert depth(b"[]") == 1 and depth(b'"just text"') == 0


@pytest.mark.parametrize("opening, closing", [(b"[", b"]"), (b'{"a":', b"}")])
def test_a_body_nested_deeper_than_the_limit_is_a_400_naming_it(opening, closing):
    body = b'{"object": "page", "entry": ' + opening * 5000 + b"1" + closing * 5000 + b"}"
    with pytest.raises(WebhookError) as refused:
        parse(body)
    assert refused.value.status == 400
    assert "nested deeper than 64" in refused.value.message


def test_the_depth_limit_is_a_setting_and_usual_bodies_are_far_below_it():
    body = b'{"object": "page", "entry": [' + b"[" * 20 + b"]" * 20 + b"]}"
    with pytest.raises(WebhookError):
        parse(body, max_depth=16)
    with pytest.raises(WebhookError, match="entry"):  # under the limit: the envelope check speaks
        parse(body, max_depth=64)
