"""From raw bytes to typed events: decode, check the envelope, split it into items, type each item.

Pure functions with no I/O, shared by the webhook blueprint, the test kit and the benchmarks.
Bad input raises :class:`WebhookError` (400) naming the field, as ``entry[0].changes[1].value``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

from marshmallow import Schema, ValidationError

from . import events as ev
from . import notices, usual
from . import schemas as sc
from .errors import WebhookError

logger = logging.getLogger("bots")

_ENVELOPE = sc.EnvelopeSchema()
_MESSAGING = sc.MessagingSchema()
_CHANGE = sc.ChangeSchema()
_reported_unknown: set[tuple[str, str]] = set()


#: Deepest nesting of arrays and objects a body may have (``WEBHOOK_MAX_DEPTH``); Workplace's go about 8 deep.
MAX_DEPTH = 64
#: A JSON string (escapes included) or one bracket: what :func:`depth` steps over.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def decode(body: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The JSON object in ``body``; 400 when it is not UTF-8, not JSON, nested deeper than ``max_depth``,
    or not an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookError(400, f"body is not UTF-8 (byte {exc.start})") from None
    if body.count(b"[") + body.count(b"{") > max_depth and depth(body) > max_depth:
        raise WebhookError(400, f"body is nested deeper than {max_depth} arrays and objects (WEBHOOK_MAX_DEPTH)")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WebhookError(400, f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise WebhookError(400, "body must be a JSON object with 'object' and 'entry'")
    return document


def depth(body: bytes) -> int:
    """How deeply arrays and objects nest in JSON ``body`` (brackets inside strings do not count).

    Only bodies with more brackets than the limit are scanned, so a usual delivery never pays for it.
    """
    deepest = level = 0
    for token in _TOKENS.finditer(body):
        mark = token.group()
        if mark in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        elif mark in (b"]", b"}"):
            level -= 1
    return deepest


class Item(NamedTuple):
    """One ``messaging`` or ``changes`` item of a delivery, untyped: the unit that is queued.

    Plain JSON values only, so a durable inbox can store it as it is; :func:`load_event` types it.
    """

    object: str
    entry_id: str | None
    time: float | None
    kind: str  # "messaging" or "changes"
    data: dict[str, Any]
    path: str

    def to_dict(self) -> dict[str, Any]:
        """The item as JSON-ready data."""
        return {"object": self.object, "entry_id": self.entry_id, "time": self.time,
                "kind": self.kind, "data": self.data, "path": self.path}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)

    @property
    def dedupe_key(self) -> str:
        """Identifies a redelivery of this item (PROTOCOL.md section 8): the message id, else a hash
        of the topic, entry id and the item as delivered."""
        message = self.data.get("message")
        if isinstance(message, dict) and isinstance(message.get("mid"), str) and message["mid"]:
            return f"mid:{message['mid']}"
        canonical = json.dumps([self.object, self.entry_id, self.kind, self.data], sort_keys=True,
                               separators=(",", ":"), default=str)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def conversation_key(self) -> str:
        """Items with the same key are one conversation (a chat thread, a 1:1 sender by id or, for a chat
        plugin guest, by ``user_ref``, a post's comments) and are handled in the order they arrived."""
        data = self.data
        if self.kind == "messaging":
            thread = data.get("thread")
            if isinstance(thread, dict) and thread.get("id"):
                return f"thread:{thread['id']}"
            sender, recipient = data.get("sender"), data.get("recipient")
            own = _ref_id(sender) is not None and _ref_id(sender) == self.entry_id
            return _person(recipient if own and _ref_id(recipient) else sender)
        value = data.get("value")
        if isinstance(value, dict) and (post := value.get("post_id") or value.get("comment_id")):
            return f"post:{post}"
        return f"{self.object}:{self.entry_id}"


def parse(body: bytes, max_depth: int = MAX_DEPTH) -> tuple[str, list[Item]]:
    """Decode ``body``, check the envelope and return its object and every item of every entry.

    Raises :class:`WebhookError` (400) when the body is not an envelope; the items themselves are
    typed later, by :func:`load_event`.
    """
    document = decode(body, max_depth)
    envelope = document if _well_formed(document) else _load(_ENVELOPE, document, "")
    topic = envelope["object"]
    items: list[Item] = []
    for index, entry in enumerate(envelope["entry"]):
        entry_id, time = entry.get("id"), entry.get("time")
        time = float(time) if time is not None else None
        for i, data in enumerate(entry.get("messaging") or ()):
            items.append(Item(topic, entry_id, time, "messaging", data, f"entry[{index}].messaging[{i}]"))
        for i, data in enumerate(entry.get("changes") or ()):
            items.append(Item(topic, entry_id, time, "changes", data, f"entry[{index}].changes[{i}]"))
    return topic, items


def _well_formed(document: dict[str, Any]) -> bool:
    """True when ``document`` is an envelope in its usual form, which the schema would accept as it is.

    A shortcut for the hot path: anything unusual (an id given as a number, a time given as text,
    a missing field) goes through the schema, which stays the contract and names what is wrong.
    """
    entries = document.get("entry")
    if type(document.get("object")) is not str or type(entries) is not list:
        return False
    for entry in entries:
        if type(entry) is not dict:
            return False
        entry_id, time = entry.get("id"), entry.get("time")
        if entry_id is not None and (type(entry_id) is not str or not entry_id):
            return False
        if time is not None and not (type(time) in (int, float) and -2**53 < time < 2**53):
            return False
        messaging, changes = entry.get("messaging"), entry.get("changes")
        if messaging is not None and (type(messaging) is not list or any(type(m) is not dict for m in messaging)):
            return False
        if changes is not None and (type(changes) is not list or not all(
                type(c) is dict and type(c.get("field")) is str and c.get("value") is not None for c in changes)):
            return False
    return True


def _ref_id(ref: object) -> str | None:
    return ref.get("id") if isinstance(ref, dict) else None


def _person(party: object) -> str:
    """The 1:1 conversation with ``party``: ``user:<id>``, or ``user_ref:<ref>`` for a chat plugin guest
    known by no id (a reference is no id, so the two never share a conversation)."""
    user_ref = party.get("user_ref") if isinstance(party, dict) else None
    if _ref_id(party) is None and user_ref is not None:
        return f"user_ref:{user_ref}"
    return f"user:{_ref_id(party)}"


def load_event(item: Item) -> ev.Event:
    """The typed event for ``item``; 400-style :class:`WebhookError` naming the field when malformed.

    An item in its usual form (:mod:`bots.usual`) is typed straight from its data, without
    marshmallow, which is the largest cost of handling an event; any other item goes through the
    schemas (:func:`load_event_by_schema`), which stay the contract and name what is wrong.
    """
    event = _usual_event(item)
    return event if event is not None else load_event_by_schema(item)


def load_event_by_schema(item: Item) -> ev.Event:
    """The typed event for ``item`` through the schemas alone: what :func:`load_event` must give."""
    entry = {"id": item.entry_id, "time": item.time}
    if item.kind == "messaging":
        return messaging_event(item.object, entry, item.data, item.path)
    return change_event(item.object, entry, item.data, item.path)


def _usual_event(item: Item) -> ev.Event | None:
    """The typed event for ``item`` when it is in its usual form, built from its data; else None."""
    topic, entry, data = item.object, {"id": item.entry_id, "time": item.time}, item.data
    if item.kind == "messaging":
        return _messaging(topic, entry, data, data) if usual.fits(data, usual.MESSAGING) else None
    if not usual.fits(data, usual.CHANGE):
        return None
    known = _CHANGES.get((topic, data["field"]))
    if known is None:
        return _unknown_change(topic, entry, data)
    schema, build = known
    value = usual.load(data["value"], usual.SHAPES[type(schema)])
    return build(value, _common(topic, entry, data, value)) if value is not None else None


def messaging_event(topic: str, entry: dict[str, Any], item: dict[str, Any], path: str = "") -> ev.MessagingEvent:
    """One ``messaging`` item as a typed event, through the schema."""
    return _messaging(topic, entry, item, _load(_MESSAGING, item, path))


def _messaging(topic: str, entry: dict[str, Any], item: dict[str, Any], data: dict[str, Any]) -> ev.MessagingEvent:
    """The event for ``messaging`` ``item`` from ``data``, the item as loaded (or as it is, when usual)."""
    sender = data["sender"]
    common = {
        "object": topic,
        "raw": item,
        "entry_id": entry.get("id"),
        "time": entry.get("time"),
        "community_id": (sender.get("community") or {}).get("id"),
        "sender_id": sender.get("id"),
        "user_ref": sender.get("user_ref"),
        "recipient_id": (data.get("recipient") or {}).get("id"),
        "thread_id": (data.get("thread") or {}).get("id"),
        "timestamp": _float(data.get("timestamp")),
    }
    if (message := data.get("message")) is not None:
        return _message(message, common)
    if (postback := data.get("postback")) is not None:
        return ev.Postback(field="messaging_postbacks", mid=postback.get("mid"), text=postback.get("title"),
                           title=postback.get("title"), payload=postback.get("payload"), **common)
    if (delivery := data.get("delivery")) is not None:
        return ev.Delivery(field="message_deliveries", mids=delivery.get("mids") or [],
                           watermark=_float(delivery.get("watermark")), **common)
    if (read := data.get("read")) is not None:
        return ev.Read(field="message_reads", watermark=_float(read.get("watermark")), **common)
    extras = [key for key in item if key not in _MESSAGING.fields]
    other = next((key for key in extras if key in MESSAGING_KINDS), None) or \
        next((key for key in extras if isinstance(item[key], dict)), "messaging")
    _report_unknown(topic, other)
    return ev.MessagingEvent(field=other, **common)


def _float(number: float | None) -> float | None:
    """``number`` as ``fields.Float`` loads it: usual items keep their ints, the schema makes floats."""
    return None if number is None else float(number)


def change_event(topic: str, entry: dict[str, Any], change: dict[str, Any], path: str = "") -> ev.Change:
    """One ``changes`` item as a typed event, through the schemas; unknown topics and fields become a plain
    ``Change``."""
    data = _load(_CHANGE, change, path)
    name, value = data["field"], data["value"]
    known = _CHANGES.get((topic, name))
    if known is None:
        return _unknown_change(topic, entry, change)
    schema, build = known
    if not isinstance(value, dict):
        raise WebhookError(400, f"{name} value must be a JSON object", f"{path}.value")
    loaded = _load(schema, value, f"{path}.value")
    return build(loaded, _common(topic, entry, change, loaded))


def _unknown_change(topic: str, entry: dict[str, Any], change: dict[str, Any]) -> ev.Change:
    """A change of a topic or field this version does not type, as a plain ``Change`` (logged once)."""
    name, value = change["field"], change["value"]
    _report_unknown(topic, name)
    return ev.Change(object=topic, field=name, raw=change, entry_id=entry.get("id"), time=entry.get("time"),
                     value=value if isinstance(value, dict) else {"value": value},
                     verb=value.get("verb") if isinstance(value, dict) else None)


def _common(topic: str, entry: dict[str, Any], change: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    """The fields every typed change shares, from the change and its loaded value."""
    return {
        "object": topic,
        "field": change["field"],
        "raw": change,
        "entry_id": entry.get("id"),
        "time": entry.get("time"),
        "value": change["value"],
        "verb": loaded.get("verb"),
        "community_id": (loaded.get("community") or {}).get("id"),
    }


def _message(message: dict[str, Any], common: dict[str, Any]) -> ev.Message:
    attachments = [
        ev.Attachment(type=a["type"], url=(a.get("payload") or {}).get("url"), raw=a)
        for a in message.get("attachments") or ()
    ]
    quick_reply = message.get("quick_reply")
    cls = ev.QuickReply if quick_reply else ev.Message
    return cls(field="messages", mid=message.get("mid"), text=message.get("text"),
               payload=quick_reply["payload"] if quick_reply else None, attachments=attachments,
               is_echo=bool(message.get("is_echo")), **common)


def _sender(loaded: dict[str, Any]) -> str | None:
    return (loaded.get("sender") or {}).get("id")


def _mention(v: dict[str, Any], common: dict[str, Any]) -> ev.Mention:
    return ev.Mention(item=v.get("item"), post_id=v.get("post_id"), comment_id=v.get("comment_id"),
                      text=v.get("message"), sender_id=_sender(v), message_tags=v.get("message_tags") or [],
                      permalink_url=v.get("permalink_url"), **common)


def _post(v: dict[str, Any], common: dict[str, Any]) -> ev.GroupPost:
    return ev.GroupPost(post_id=v.get("post_id"), text=v.get("message"), sender_id=_sender(v),
                        type=v.get("type"), target_type=v.get("target_type"), created_time=v.get("created_time"),
                        permalink_url=v.get("permalink_url"), attachments=v.get("attachments"), **common)


def _comment(v: dict[str, Any], common: dict[str, Any]) -> ev.GroupComment:
    return ev.GroupComment(comment_id=v.get("comment_id"), post_id=v.get("post_id"), text=v.get("message"),
                           sender_id=_sender(v), created_time=v.get("created_time"), **common)


def _membership(v: dict[str, Any], common: dict[str, Any]) -> ev.Membership:
    actor = (v.get("actor") or {}).get("id")
    return ev.Membership(member_id=(v.get("member") or {}).get("id"), actor_id=actor, sender_id=actor,
                         update_time=v.get("update_time"), **common)


def _security(v: dict[str, Any], common: dict[str, Any]) -> ev.SecurityEvent:
    return ev.SecurityEvent(event_name=v.get("event"), actor_id=v.get("actor_id"), target_id=v.get("target_id"),
                            sender_id=v.get("actor_id"), ip=v.get("ip"), **common)


def _user(v: dict[str, Any], common: dict[str, Any]) -> ev.UserChange:
    return ev.UserChange(sender_id=common["entry_id"], **common)


def _link(v: dict[str, Any], common: dict[str, Any]) -> ev.LinkRequest:
    return ev.LinkRequest(link=v.get("link"), sender_id=(v.get("user") or {}).get("id"), **common)


_CHANGES: dict[tuple[str, str], tuple[Schema, Callable[[dict[str, Any], dict[str, Any]], ev.Change]]] = {
    ("page", "mention"): (sc.MentionValue(), _mention),
    ("group", "posts"): (sc.PostValue(), _post),
    ("group", "comments"): (sc.CommentValue(), _comment),
    ("group", "membership"): (sc.MembershipValue(), _membership),
    ("user", "status"): (sc.UserValue(), _user),
    ("user", "events"): (sc.UserValue(), _user),
    ("workplace_security", "admin_activity"): (sc.SecurityValue(), _security),
    ("workplace_security", "sessions"): (sc.SecurityValue(), _security),
    ("link", "preview"): (sc.LinkPreviewValue(), _link),
    ("link", "collection"): (sc.LinkCollectionValue(), _link),
}

#: Every object/field pair this version types, for docs, fixtures and the manifest.
KNOWN_CHANGES = tuple(_CHANGES)
KNOWN_MESSAGING = ("messages", "messaging_postbacks", "message_deliveries", "message_reads")
#: Messenger's other kinds of ``messaging`` item: typed as a plain ``MessagingEvent`` named after the kind.
MESSAGING_KINDS = frozenset({"reaction", "optin", "referral", "account_linking", "policy_enforcement",
                             "pass_thread_control", "take_thread_control", "request_thread_control", "app_roles",
                             "game_play", "standby", "message_edit"})


def _load(schema: Schema, data: object, path: str) -> dict[str, Any]:
    try:
        # A schema answers what is no mapping with a ValidationError, as for any other bad field.
        loaded: dict[str, Any] = schema.load(cast("Mapping[str, Any]", data))
        return loaded
    except ValidationError as exc:
        field, message = sc.error_path(exc.messages, path)
        raise WebhookError(400, f"{field or 'body'}: {message}", field or None) from None


def _report_unknown(topic: str, field: str) -> None:
    if (topic, field) not in _reported_unknown:
        _reported_unknown.add((topic, field))
        logger.info(notices.UNKNOWN_TOPIC, "webhook", topic, field, topic, field)
