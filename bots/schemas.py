"""Marshmallow schemas for the envelope and for every topic/field of PROTOCOL.md section 4.

The schemas check types and the few fields a handler cannot do without; everything else is
optional and unknown keys pass through (``INCLUDE``), because Workplace adds fields without notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema


class Id(fields.Field[str]):
    """A Graph id: a string, or a whole number some senders use, loaded as a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("Not a valid id: expected a string.")
        text = str(value)
        if not text:
            raise ValidationError("Not a valid id: empty.")
        return text


class _Lenient(Schema):
    class Meta:
        unknown = INCLUDE


class Ref(_Lenient):
    id = Id(required=True)


class Party(_Lenient):
    id = Id(required=True)
    community = fields.Nested(Ref, allow_none=True)


class Sender(Party):
    """Who sent a ``messaging`` item: a Graph id, or, from Messenger's chat plugin, only a ``user_ref``.

    Exactly one of the two (:data:`ONE_OF`); with neither the error is the one a missing ``id`` always
    gave, so a sender with nothing to answer stays a schema error naming it.
    """

    #: The keys of which exactly one is given (not null); :mod:`bots.usual` checks the same.
    ONE_OF = ("id", "user_ref")

    id = Id(allow_none=True)
    user_ref = fields.String(allow_none=True, validate=validate.Length(min=1))

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [key for key in self.ONE_OF if data.get(key) is not None]
        if not given:
            raise ValidationError("Missing data for required field.", "id")
        if len(given) > 1:
            raise ValidationError("Give either id or user_ref, not both.")


class QuickReplyRef(_Lenient):
    payload = fields.String(required=True)


class AttachmentSchema(_Lenient):
    type = fields.String(required=True)
    payload = fields.Dict(allow_none=True)


class MessageBody(_Lenient):
    mid = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    is_echo = fields.Boolean(allow_none=True)
    quick_reply = fields.Nested(QuickReplyRef, allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentSchema), allow_none=True)


class PostbackBody(_Lenient):
    mid = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    payload = fields.String(allow_none=True)


class DeliveryBody(_Lenient):
    mids = fields.List(fields.String(), allow_none=True)
    watermark = fields.Float(allow_none=True)


class ReadBody(_Lenient):
    watermark = fields.Float(allow_none=True)


class MessagingSchema(_Lenient):
    """One item of ``entry[].messaging``: who sent it, to whom, and one of its kinds."""

    sender = fields.Nested(Sender, required=True)
    recipient = fields.Nested(Party, allow_none=True)
    thread = fields.Nested(Ref, allow_none=True)
    timestamp = fields.Float(allow_none=True)
    message = fields.Nested(MessageBody, allow_none=True)
    postback = fields.Nested(PostbackBody, allow_none=True)
    delivery = fields.Nested(DeliveryBody, allow_none=True)
    read = fields.Nested(ReadBody, allow_none=True)


class ChangeSchema(_Lenient):
    field = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=False)


class EntrySchema(_Lenient):
    id = Id(allow_none=True)
    time = fields.Float(allow_none=True)
    messaging = fields.List(fields.Dict(), allow_none=True)
    changes = fields.List(fields.Nested(ChangeSchema), allow_none=True)


class EnvelopeSchema(_Lenient):
    """The outer shape of every delivery: ``{"object": ..., "entry": [...]}``, down to each item.

    What is inside an item is checked later, by the item's own schema, so one odd item never
    makes Workplace retry (and in the end drop) the whole batch it came in.
    """

    object = fields.String(required=True)
    entry = fields.List(fields.Nested(EntrySchema), required=True)


class _FeedValue(_Lenient):
    verb = fields.String(allow_none=True)
    message = fields.String(allow_none=True)
    sender = fields.Nested(Ref, data_key="from", allow_none=True)
    community = fields.Nested(Ref, allow_none=True)


class MentionValue(_FeedValue):
    item = fields.String(allow_none=True)
    post_id = Id(allow_none=True)
    comment_id = Id(allow_none=True)
    message_tags = fields.List(fields.Dict(), allow_none=True)
    permalink_url = fields.String(allow_none=True)


class PostValue(_FeedValue):
    post_id = Id(allow_none=True)
    type = fields.String(allow_none=True)
    target_type = fields.String(allow_none=True)
    created_time = fields.Raw(allow_none=True)
    permalink_url = fields.String(allow_none=True)
    attachments = fields.Dict(allow_none=True)


class CommentValue(_FeedValue):
    comment_id = Id(allow_none=True)
    post_id = Id(allow_none=True)
    created_time = fields.Raw(allow_none=True)


class MembershipValue(_Lenient):
    verb = fields.String(allow_none=True)
    member = fields.Nested(Ref, allow_none=True)
    actor = fields.Nested(Ref, allow_none=True)
    update_time = fields.Raw(allow_none=True)
    community = fields.Nested(Ref, allow_none=True)


class SecurityValue(_Lenient):
    event = fields.String(allow_none=True)
    actor_id = Id(allow_none=True)
    target_id = Id(allow_none=True)
    ip = fields.String(allow_none=True)
    timestamp = fields.Raw(allow_none=True)
    community = fields.Nested(Ref, allow_none=True)


class UserValue(_Lenient):
    verb = fields.String(allow_none=True)
    community = fields.Nested(Ref, allow_none=True)


class LinkPreviewValue(_Lenient):
    link = fields.String(required=True)
    user = fields.Nested(Ref, required=True)
    community = fields.Nested(Ref, allow_none=True)


class LinkCollectionValue(LinkPreviewValue):
    link = fields.String(allow_none=True)


def error_path(messages: dict[Any, Any] | list[Any] | str, prefix: str = "") -> tuple[str, str]:
    """The first error of a marshmallow error tree as (``entry[0].messaging[1].sender``, message)."""
    while isinstance(messages, dict):
        key, messages = next(iter(messages.items()))
        if isinstance(key, int):
            prefix = f"{prefix}[{key}]"
        elif key != "_schema":
            prefix = f"{prefix}.{key}" if prefix else str(key)
    if isinstance(messages, list):
        messages = messages[0] if messages else "invalid"
        if isinstance(messages, dict):
            return error_path(messages, prefix)
    return prefix, str(messages)
