"""The usual form of each item: data the schemas of :mod:`bots.schemas` would accept as it is.

:func:`bots.envelope.load_event` types an item in its usual form straight from its data, because
loading it through marshmallow is the largest cost of handling an event. The usual form is
narrower than the schemas: ids as non-empty strings; strings, bools, dicts and lists where the
schema wants them; numbers as plain ints or floats. Anything else (an id given as a number,
``"true"`` for a bool, None for the sender) is not usual and goes through the schemas, which stay
the contract and name the faulty field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from marshmallow import Schema

from . import schemas as sc

Check = Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class Shape:
    """The usual form of one schema's data.

    ``fields`` checks each field by its key in the data; a field that is absent or None is usual
    unless it is ``required``. ``renamed`` maps a key to the name the schema loads it under (its
    ``data_key``). ``one_of`` names keys of which exactly one must be given (not None), as a schema's
    ``ONE_OF`` does.
    """

    fields: dict[str, Check]
    required: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)
    one_of: tuple[str, ...] = ()
    #: The names renamed fields are loaded under, which the data must not hold itself.
    loaded_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "loaded_names", frozenset(self.renamed.values()))


def fits(data: object, shape: Shape) -> TypeGuard[dict[str, Any]]:
    """True when ``data`` is in the usual form of ``shape``, so its schema would accept it.

    A dict whose required fields are there, whose every other field is absent, None or passes its
    check, with exactly one of its ``one_of`` keys given, and with no key that a renamed field is
    loaded under (the schema would let it clash). The data's keys are walked rather than the shape's
    fields: an item carries a few of the fields its schema knows, and this runs for every event.
    """
    if type(data) is not dict:
        return False
    fields, loaded = shape.fields, shape.loaded_names
    for key, value in data.items():
        if key in loaded:
            return False
        check = fields.get(key)
        if check is not None and value is not None and not check(value):
            return False
    for key in shape.required:
        if data.get(key) is None:
            return False
    return not shape.one_of or sum(data.get(key) is not None for key in shape.one_of) == 1


def load(data: object, shape: Shape) -> dict[str, Any] | None:
    """``data`` as the schema of ``shape`` loads it when it is in its usual form, else None.

    The same dict unless the schema renames a field. Numbers stay as delivered: the typing code
    makes floats of them where the schema has a ``fields.Float``.
    """
    if not fits(data, shape):
        return None
    if not shape.renamed:
        return data
    loaded = dict(data)
    for key, name in shape.renamed.items():
        if key in loaded:
            loaded[name] = loaded.pop(key)
    return loaded


def _text(value: object) -> bool:
    """A string, which ``fields.String`` loads unchanged."""
    return type(value) is str


def _id(value: object) -> bool:
    """A non-empty string, which :class:`bots.schemas.Id` loads unchanged (it makes strings of numbers)."""
    return type(value) is str and value != ""


def _token(value: object) -> bool:
    """A non-empty string, which a ``fields.String`` of minimum length 1 loads unchanged."""
    return type(value) is str and value != ""


def _number(value: object) -> bool:
    """An int or float that ``fields.Float`` takes exactly: finite and below 2**53 either way."""
    return (type(value) is int or type(value) is float) and -2**53 < value < 2**53


def _flag(value: object) -> bool:
    """A bool, which ``fields.Boolean`` loads unchanged (it also reads ``"yes"``, 1 ..., not usual)."""
    return type(value) is bool


def _mapping(value: object) -> bool:
    """A dict, which ``fields.Dict`` loads as an equal copy."""
    return type(value) is dict


def _anything(value: object) -> bool:
    """Any value, which ``fields.Raw`` loads unchanged."""
    return True


def _list_of(check: Check) -> Check:
    """A check for a list whose every item passes ``check``, as ``fields.List`` wants it."""
    return lambda value: type(value) is list and all(check(item) for item in value)


def _nested(shape: Shape) -> Check:
    """A check for a dict in the usual form of ``shape``, as ``fields.Nested`` wants it."""
    return lambda value: fits(value, shape)


REF = Shape({"id": _id}, required=("id",))
PARTY = Shape({"id": _id, "community": _nested(REF)}, required=("id",))
SENDER = Shape({"id": _id, "user_ref": _token, "community": _nested(REF)}, one_of=sc.Sender.ONE_OF)
QUICK_REPLY = Shape({"payload": _text}, required=("payload",))
ATTACHMENT = Shape({"type": _text, "payload": _mapping}, required=("type",))
MESSAGE = Shape({"mid": _text, "text": _text, "is_echo": _flag, "quick_reply": _nested(QUICK_REPLY),
                 "attachments": _list_of(_nested(ATTACHMENT))})
POSTBACK = Shape({"mid": _text, "title": _text, "payload": _text})
DELIVERY = Shape({"mids": _list_of(_text), "watermark": _number})
READ = Shape({"watermark": _number})
MESSAGING = Shape({"sender": _nested(SENDER), "recipient": _nested(PARTY), "thread": _nested(REF),
                   "timestamp": _number, "message": _nested(MESSAGE), "postback": _nested(POSTBACK),
                   "delivery": _nested(DELIVERY), "read": _nested(READ)}, required=("sender",))
CHANGE = Shape({"field": _text, "value": _anything}, required=("field", "value"))

_FEED = {"verb": _text, "message": _text, "from": _nested(REF), "community": _nested(REF)}
_AUTHOR = {"from": "sender"}
MENTION = Shape({**_FEED, "item": _text, "post_id": _id, "comment_id": _id, "message_tags": _list_of(_mapping),
                 "permalink_url": _text}, renamed=_AUTHOR)
POST = Shape({**_FEED, "post_id": _id, "type": _text, "target_type": _text, "created_time": _anything,
              "permalink_url": _text, "attachments": _mapping}, renamed=_AUTHOR)
COMMENT = Shape({**_FEED, "comment_id": _id, "post_id": _id, "created_time": _anything}, renamed=_AUTHOR)
MEMBERSHIP = Shape({"verb": _text, "member": _nested(REF), "actor": _nested(REF), "update_time": _anything,
                    "community": _nested(REF)})
SECURITY = Shape({"event": _text, "actor_id": _id, "target_id": _id, "ip": _text, "timestamp": _anything,
                  "community": _nested(REF)})
USER = Shape({"verb": _text, "community": _nested(REF)})
PREVIEW = Shape({"link": _text, "user": _nested(REF), "community": _nested(REF)}, required=("link", "user"))
COLLECTION = Shape({"link": _text, "user": _nested(REF), "community": _nested(REF)}, required=("user",))

#: The usual form of each schema an item is loaded with.
SHAPES: dict[type[Schema], Shape] = {
    sc.Ref: REF, sc.Party: PARTY, sc.Sender: SENDER, sc.QuickReplyRef: QUICK_REPLY, sc.AttachmentSchema: ATTACHMENT,
    sc.MessageBody: MESSAGE, sc.PostbackBody: POSTBACK, sc.DeliveryBody: DELIVERY, sc.ReadBody: READ,
    sc.MessagingSchema: MESSAGING, sc.ChangeSchema: CHANGE, sc.MentionValue: MENTION, sc.PostValue: POST,
    sc.CommentValue: COMMENT, sc.MembershipValue: MEMBERSHIP, sc.SecurityValue: SECURITY, sc.UserValue: USER,
    sc.LinkPreviewValue: PREVIEW, sc.LinkCollectionValue: COLLECTION,
}
