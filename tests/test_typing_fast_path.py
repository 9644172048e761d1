"""Property tests: typing an item in its usual form without marshmallow (bots/usual.py) gives exactly
the event the schemas give, and anything unusual goes through the schemas and fails as they do."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema

from bots import envelope, usual
from bots import schemas as sc
from bots.envelope import Item, load_event, load_event_by_schema
from bots.errors import WebhookError

MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- comparing outcomes ---------------------------------------------------------------------------------

def plain(value: object) -> object:
    """``value`` as nested tuples that are equal only when types are too: 1 and 1.0 differ, NaN equals NaN."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__, tuple((f.name, plain(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return "dict", tuple(sorted((key, plain(item)) for key, item in value.items()))
    if isinstance(value, list):
        return "list", tuple(plain(item) for item in value)
    if isinstance(value, float):
        return "float", repr(value)
    return type(value).__name__, value


def outcome(load, queued: Item) -> object:
    """The event ``load`` makes of ``queued``, or the error it raises, as comparable data."""
    try:
        return plain(load(queued))
    except WebhookError as error:
        return "WebhookError", error.status, error.message, error.field
    except Exception as error:  # the schema path has its own crashes; the fast path must keep them
        return type(error).__name__, str(error)


# --- usual items ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
texts = st.text(max_size=12)
usual_ids = st.text(min_size=1, max_size=10)
numbers = st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(-1e15, 1e15)
entry_ids = st.none() | usual_ids
times = st.none() | st.floats(0, 2e12)


def record(dense: bool, required: dict, optional: dict) -> st.SearchStrategy:
    """Dicts with the ``required`` keys and some ``optional`` ones, maybe null (every optional field of the
    schemas allows null); when ``dense``, with every optional key and none null, so each check is in play."""
    if dense:
        return st.fixed_dictionaries({**required, **optional})
    return st.fixed_dictionaries(required, optional={key: st.none() | value for key, value in optional.items()})


def item(topic: str, kind: str, data: object, entry_id: str | None, time: float | None) -> Item:
    """One queued item, as :func:`bots.envelope.parse` makes them."""
    return Item(topic, entry_id, time, kind, data, f"entry[0].{kind}[0]")


def usual_items(dense: bool = False) -> st.SearchStrategy:
    """Items in their usual form, for every kind of ``messaging`` item and every typed change."""
    free = (st.none() | st.integers() | texts) if dense else json_values  # unknown keys, Raw fields: kept light
    ref = record(dense, {"id": usual_ids}, {"name": texts})
    party = record(dense, {"id": usual_ids}, {"community": ref})
    guest = record(dense, {"user_ref": usual_ids}, {"community": ref})  # Messenger's chat plugin: no id
    nobody = st.fixed_dictionaries({"id": st.none(), "user_ref": usual_ids})  # an id given as null
    sender = party | guest | nobody if not dense else party | guest
    attachment = record(dense, {"type": st.sampled_from(["image", "file"]) | texts},
                        {"payload": record(dense, {}, {"url": texts | free})})
    message = record(dense, {}, {"mid": texts, "text": texts, "is_echo": st.booleans(),
                                 "quick_reply": record(dense, {"payload": texts}, {}),
                                 "attachments": st.lists(attachment, max_size=2), "sticker_id": free})
    messaging = record(dense, {"sender": sender}, {
        "recipient": party, "thread": ref, "timestamp": numbers, "message": message,
        "postback": record(dense, {}, {"mid": texts, "title": texts, "payload": texts}),
        "delivery": record(dense, {}, {"mids": st.lists(texts, max_size=3), "watermark": numbers}),
        "read": record(dense, {}, {"watermark": numbers}),
        "reaction": st.fixed_dictionaries({"reaction": texts}), "standby": free})
    feed = {"verb": texts, "message": texts, "from": ref, "community": ref, "extra": free}
    values = {
        ("page", "mention"): record(dense, {}, {**feed, "item": texts, "post_id": usual_ids, "comment_id": usual_ids,
                                                "message_tags": st.lists(st.dictionaries(texts, free)),
                                                "permalink_url": texts}),
        ("group", "posts"): record(dense, {}, {**feed, "post_id": usual_ids, "type": texts, "target_type": texts,
                                               "created_time": free, "permalink_url": texts,
                                               "attachments": st.dictionaries(texts, free, max_size=3)}),
        ("group", "comments"): record(dense, {}, {**feed, "comment_id": usual_ids, "post_id": usual_ids,
                                                  "created_time": free}),
        ("group", "membership"): record(dense, {}, {"verb": texts, "member": ref, "actor": ref,
                                                    "update_time": free, "community": ref}),
        ("user", "status"): record(dense, {}, {"verb": texts, "community": ref}),
        ("workplace_security", "sessions"): record(dense, {}, {
            "event": texts, "actor_id": usual_ids, "target_id": usual_ids, "ip": texts, "timestamp": free,
            "community": ref}),
        ("link", "preview"): record(dense, {"link": texts, "user": ref}, {"community": ref}),
        ("link", "collection"): record(dense, {"user": ref}, {"link": texts, "community": ref}),
        ("group", "other"): free.filter(lambda value: value is not None),
    }
    changes = st.sampled_from(sorted(values)).flatmap(lambda key: st.builds(
        item, st.just(key[0]), st.just("changes"), st.fixed_dictionaries({"field": st.just(key[1]),
                                                                           "value": values[key]}),
        entry_ids, times))
    return st.builds(item, st.just("page"), st.just("messaging"), messaging, entry_ids, times) | changes


# --- unusual items --------------------------------------------------------------------------------------

odd_leaves = json_values | st.sampled_from(
    ["", "true", "no", "abc", 0, 1, 2**53, 10**400, True, None, 1.5, float("inf"), float("nan"), {}, [], [None],
     {"id": 7}, {"id": ""}, {"id": True}, {"id": None}, {"user_ref": ""}, {"user_ref": 7}, {"user_ref": None},
     {"id": "1", "user_ref": "r"}])
#: Odd values that come close to a usual value of the same kind: what a check has to tell apart.
near_misses = {
    bool: ["no", "yes", "false", "off", 0, 1, "abc", [], {}],
    int: [float("inf"), float("-inf"), float("nan"), 2**53, -(2**53), 10**400, True, False, "1", "abc"],
    str: ["", 1, 0, True, False, [], {}, ["x"]],
    dict: [[], "x", 1, True, {}, {"id": 1}, {"id": ""}, {"id": True}, {"id": None}, {"type": 1}, {"payload": 1},
           {"user_ref": ""}, {"user_ref": 1}, {"user_ref": None}, {"id": "1", "user_ref": "r"}],
    list: [{}, "x", 1, [None], [1], ["x"], [{}], [{"type": 1}], [{"type": None}], [{"type": "image", "payload": 1}]],
}
near_misses[float] = near_misses[int]
#: Keys a mutation may add: every field of every schema, and ``sender``, which a feed schema loads ``from`` as.
field_keys = sorted({key for shape in usual.SHAPES.values() for key in shape.fields} | {"sender"})


def slots(node: object) -> list[tuple[dict | list, str | int]]:
    """Every (container, key) in ``node``, nested ones included, to pick one to spoil."""
    if isinstance(node, dict):
        keys = list(node)
    elif isinstance(node, list):
        keys = list(range(len(node)))
    else:
        return []
    return [(node, key) for key in keys] + [slot for key in keys for slot in slots(node[key])]


@st.composite
def mutated(draw: st.DrawFn, items: st.SearchStrategy) -> Item:
    """An item of ``items`` with one value anywhere in its data made odd (mostly a near miss of its kind),
    removed, or with an odd key added."""
    original = draw(items)
    data = copy.deepcopy(original.data)
    places = slots(data)
    action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
    removable = [(node, key) for node, key in places if isinstance(node, dict)]
    if action == "replace" and places:
        node, key = draw(st.sampled_from(places))
        node[key] = draw(st.sampled_from(near_misses.get(type(node[key]), [None])) | odd_leaves)
    elif action == "remove" and removable:
        node, key = draw(st.sampled_from(removable))
        del node[key]
    else:
        dicts = [data] + [node[key] for node, key in places if isinstance(node[key], dict)]
        draw(st.sampled_from(dicts))[draw(st.sampled_from(field_keys))] = draw(odd_leaves)
    return original._replace(data=data)


topics = st.sampled_from(["page", "group", "user", "workplace_security", "link", "other"])
odd_ids = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans())
odd_refs = st.one_of(st.fixed_dictionaries({"id": odd_ids}), json_values)
odd_senders = st.one_of(odd_refs, st.fixed_dictionaries({"user_ref": odd_ids}),
                        st.fixed_dictionaries({"id": odd_ids, "user_ref": odd_ids}))
odd_messaging = st.fixed_dictionaries({"sender": odd_senders}, optional={
    "recipient": odd_refs, "thread": odd_refs, "timestamp": json_values,
    "message": st.fixed_dictionaries({}, optional={"mid": odd_ids, "text": json_values, "is_echo": json_values,
                                                   "quick_reply": json_values, "attachments": json_values}),
    "postback": json_values, "delivery": json_values, "read": json_values})
odd_changes = st.fixed_dictionaries({
    "field": st.sampled_from(["mention", "posts", "comments", "membership", "status", "events", "admin_activity",
                              "sessions", "preview", "collection", "other"]) | json_values,
    "value": json_values | st.dictionaries(st.sampled_from(field_keys), odd_leaves, max_size=6)})
odd_items = st.one_of(
    mutated(usual_items(dense=True)),
    mutated(usual_items()),
    st.builds(item, topics, st.just("messaging"), odd_messaging | json_values, entry_ids, times),
    st.builds(item, topics, st.just("changes"), odd_changes | json_values, entry_ids, times),
)


# --- the properties -------------------------------------------------------------------------------------

@MANY
@given(usual_items() | usual_items(dense=True))
def test_a_usual_item_skips_the_schemas_and_gets_the_event_they_give(queued):
    fast = envelope._usual_event(queued)
    assert fast is not None, "a usual item should take the fast path"
    assert fast.raw is queued.data
    assert plain(fast) == outcome(load_event_by_schema, queued)


@MANY
@given(usual_items() | odd_items)
def test_any_item_is_typed_the_same_with_or_without_the_fast_path(queued):
    assert outcome(load_event, queued) == outcome(load_event_by_schema, queued)


@MANY
@given(mutated(usual_items(dense=True)))
def test_an_item_spoiled_in_one_place_is_typed_the_same_with_or_without_the_fast_path(queued):
    assert outcome(load_event, queued) == outcome(load_event_by_schema, queued)


REF, PARTY = {"id": "1"}, {"id": "100071234567890", "community": {"id": "1394518670594144"}}
CHAT = {"sender": PARTY, "recipient": {"id": "105678357661487", "community": {"id": "1394518670594144"}},
        "thread": {"id": "t_1"}, "timestamp": 1700000000000}
FEED = {"verb": "add", "message": "hi", "from": REF, "community": REF}
#: A ``messaging`` item of each kind, and the value of a change of each field, with every field the schemas
#: know there, in its usual form.
CHATS = {
    "message": {**CHAT, "message": {
        "mid": "m_1", "text": "hi", "is_echo": False, "quick_reply": {"payload": "YES"},
        "attachments": [{"type": "image", "payload": {"url": "https://example.com/a.png"}}]},
        "postback": {"mid": "m_2", "title": "Yes", "payload": "YES"},
        "delivery": {"mids": ["m_3"], "watermark": 1700000000000}, "read": {"watermark": 1.5}},
    "postback": {**CHAT, "postback": {"mid": "m_2", "title": "Yes", "payload": "YES"},
                 "delivery": {"mids": ["m_3"], "watermark": 1}, "read": {"watermark": 2}},
    "delivery": {**CHAT, "delivery": {"mids": ["m_3"], "watermark": 1}, "read": {"watermark": 2}},
    "read": {**CHAT, "read": {"watermark": 1700000000000}},
    "reaction": {**CHAT, "reaction": {"reaction": "like"}},
    "guest message": {"sender": {"user_ref": "ref_1"}, "recipient": {"id": "105678357661487"},
                      "timestamp": 1700000000000, "message": {"mid": "m_1", "text": "hi"}},
    "guest postback": {"sender": {"user_ref": "ref_1", "community": None}, "recipient": {"id": "105678357661487"},
                       "timestamp": 1700000000000, "postback": {"title": "Start", "payload": "GET_STARTED"}},
}
VALUES = {
    "mention": ("page", {**FEED, "item": "post", "post_id": "1_2", "comment_id": "1_3", "message_tags": [{"id": "1"}],
                         "permalink_url": "https://x"}),
    "posts": ("group", {**FEED, "post_id": "1_2", "type": "status", "target_type": "group",
                        "created_time": "2023-11-14T22:13:20+0000", "permalink_url": "https://x",
                        "attachments": {"data": []}}),
    "comments": ("group", {**FEED, "comment_id": "1_3", "post_id": "1_2", "created_time": 1700000000}),
    "membership": ("group", {"verb": "add", "member": REF, "actor": REF, "update_time": 1, "community": REF}),
    "status": ("user", {"verb": "update", "community": REF}),
    "sessions": ("workplace_security", {"event": "login", "actor_id": "1", "target_id": "2", "ip": "10.0.0.1",
                                        "timestamp": 1, "community": REF}),
    "preview": ("link", {"link": "https://x", "user": REF, "community": REF}),
    "collection": ("link", {"link": "https://x", "user": REF, "community": REF}),
    "other": ("group", {"verb": "add"}),
}


def full_item(name: str) -> Item:
    """The ``messaging`` item of :data:`CHATS`, or the change of :data:`VALUES`, named ``name``."""
    if name in CHATS:
        return item("page", "messaging", copy.deepcopy(CHATS[name]), "105678357661487", 1700000000.0)
    topic, value = VALUES[name]
    return item(topic, "changes", {"field": name, "value": copy.deepcopy(value)}, "105678357661487", 1700000000.0)


def spoiled(data: dict) -> list[dict]:
    """Copies of ``data``, each with one value anywhere made a near miss of its kind or removed, or with a
    ``sender`` key added to one of its dicts."""
    copies = []
    for index, (node, key) in enumerate(slots(data)):
        for change in [*near_misses.get(type(node[key]), []), None, "remove", "add"]:
            if change in ("remove", "add") and not isinstance(node, dict):
                continue
            twin = copy.deepcopy(data)
            twin_node, twin_key = slots(twin)[index]
            if change == "remove":
                del twin_node[twin_key]
            elif change == "add":
                twin_node["sender"] = {"id": "6"}
            else:
                twin_node[twin_key] = change
            copies.append(twin)
    return copies


@pytest.mark.parametrize("name", [*CHATS, *VALUES])
def test_every_near_miss_of_a_full_item_is_typed_the_same_with_or_without_the_fast_path(name):
    queued = full_item(name)
    assert envelope._usual_event(queued) is not None
    assert plain(load_event(queued)) == outcome(load_event_by_schema, queued)
    for data in spoiled(queued.data):
        twin = queued._replace(data=data)
        assert outcome(load_event, twin) == outcome(load_event_by_schema, twin), data


def test_the_usual_shapes_name_every_field_of_every_item_schema():
    outer = {sc.EnvelopeSchema, sc.EntrySchema, sc._Lenient, sc._FeedValue}
    item_schemas = {cls for cls in vars(sc).values()
                    if isinstance(cls, type) and issubclass(cls, Schema) and cls is not Schema} - outer
    assert set(usual.SHAPES) == item_schemas
    for cls, shape in usual.SHAPES.items():
        declared = cls().fields
        keys = {f.data_key or name: name for name, f in declared.items()}
        assert set(shape.fields) == set(keys), cls.__name__
        assert set(shape.required) == {f.data_key or name for name, f in declared.items() if f.required}, cls.__name__
        assert shape.renamed == {key: name for key, name in keys.items() if key != name}, cls.__name__
        assert shape.one_of == getattr(cls, "ONE_OF", ()), cls.__name__
        assert all(f.allow_none for f in declared.values() if not f.required), cls.__name__


def test_an_int_timestamp_is_a_float_either_way():
    data = {"sender": {"id": "1"}, "timestamp": 1700000000000, "read": {"watermark": 5}}
    queued = item("page", "messaging", data, "1", None)
    event = load_event(queued)
    assert type(event.timestamp) is float and type(event.watermark) is float
    assert plain(event) == plain(load_event_by_schema(queued))


def test_a_numeric_id_goes_through_the_schema_which_makes_it_a_string():
    queued = item("page", "messaging", {"sender": {"id": 42}, "message": {"text": "hi"}}, "1", None)
    assert envelope._usual_event(queued) is None
    assert load_event(queued).sender_id == "42"


def test_a_sender_with_only_a_user_ref_takes_the_fast_path_and_one_with_both_the_schema():
    guest = item("page", "messaging", {"sender": {"user_ref": "ref_1"}, "postback": {"payload": "GO"}}, "1", None)
    fast = envelope._usual_event(guest)
    assert fast is not None and (fast.user_ref, fast.sender_id) == ("ref_1", None)
    assert plain(fast) == plain(load_event_by_schema(guest))
    both = guest._replace(data={**guest.data, "sender": {"id": "5", "user_ref": "ref_1"}})
    neither = guest._replace(data={**guest.data, "sender": {"community": {"id": "1"}}})
    for spoilt in (both, neither):
        assert envelope._usual_event(spoilt) is None
        assert outcome(load_event, spoilt) == outcome(load_event_by_schema, spoilt)
        assert outcome(load_event, spoilt)[0] == "WebhookError"


def test_an_unusual_item_fails_naming_its_field():
    queued = item("page", "messaging", {"sender": None, "message": {"text": "hi"}}, "1", None)
    with pytest.raises(WebhookError) as error:
        load_event(queued)
    assert error.value.field == "entry[0].messaging[0].sender"


def test_a_feed_value_with_both_from_and_sender_goes_through_the_schema():
    change = {"field": "posts", "value": {"from": {"id": "5"}, "sender": {"id": "6"}, "message": "hi"}}
    queued = item("group", "changes", change, "1", None)
    assert envelope._usual_event(queued) is None
    assert plain(load_event(queued)) == plain(load_event_by_schema(queued))
