"""Typed events: one small object per ``messaging`` item or ``changes`` item of a delivery.

Every event has the same few attributes (``object``, ``field``, ``sender_id``, ``text``, ``mid``,
``thread_id``, ``payload``, ``community_id``, ``time``, ``raw``) so matchers and middleware can
treat them alike; subclasses add what their topic carries. ``raw`` is the item exactly as
delivered, unknown fields included.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(slots=True, kw_only=True, eq=False)
class Event:
    """An event of any topic: what every handler, matcher and middleware can rely on."""

    object: str
    field: str
    raw: dict[str, Any]
    entry_id: str | None = None
    time: float | None = None
    community_id: str | None = None
    sender_id: str | None = None
    text: str | None = None
    mid: str | None = None
    thread_id: str | None = None
    payload: str | None = None

    #: Listener kinds this event is offered to, most specific first; "any" (``@bot.on``) is last.
    kinds: ClassVar[tuple[str, ...]] = ("any",)

    @property
    def dedupe_key(self) -> str:
        """Identifies a redelivery of this event: the message id, else a hash of what was delivered."""
        if self.mid:
            return f"mid:{self.mid}"
        canonical = json.dumps([self.object, self.entry_id, self.field, self.raw], sort_keys=True,
                               separators=(",", ":"), default=str)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """A short label for logs, with no message content in it."""
        return f"{self.object}/{self.field} ({type(self).__name__})"


@dataclass(slots=True, kw_only=True, eq=False)
class MessagingEvent(Event):
    """A chat event from the ``messaging`` list of a page entry.

    ``user_ref`` is set, and ``sender_id`` is None, when Messenger's chat plugin knows the sender only
    by a reference of its own; ``ctx.reply`` answers through it (``recipient.user_ref``).
    """

    user_ref: str | None = None
    recipient_id: str | None = None
    timestamp: float | None = None

    @property
    def is_group_chat(self) -> bool:
        """True when the message came from a group chat rather than a 1:1 conversation."""
        return self.thread_id is not None


@dataclass(slots=True, kw_only=True, eq=False)
class Attachment:
    """A file, image, video or audio clip sent in a chat message."""

    type: str
    url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True, eq=False)
class Message(MessagingEvent):
    """A chat message to the bot (``page``/``messages``)."""

    attachments: list[Attachment] = field(default_factory=list)
    is_echo: bool = False
    kinds: ClassVar[tuple[str, ...]] = ("message", "any")


@dataclass(slots=True, kw_only=True, eq=False)
class QuickReply(Message):
    """A tap on a quick reply: a message whose ``payload`` is the quick reply's payload.

    Offered to ``on_quick_reply`` handlers first, then to ``on_message`` ones with its text.
    """

    kinds: ClassVar[tuple[str, ...]] = ("quick_reply", "message", "any")


@dataclass(slots=True, kw_only=True, eq=False)
class Postback(MessagingEvent):
    """A tap on a button, the persistent menu or Get Started (``page``/``messaging_postbacks``)."""

    title: str | None = None
    kinds: ClassVar[tuple[str, ...]] = ("postback", "any")


@dataclass(slots=True, kw_only=True, eq=False)
class Delivery(MessagingEvent):
    """Messages the bot sent were delivered (``page``/``message_deliveries``)."""

    mids: list[str] = field(default_factory=list)
    watermark: float | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Read(MessagingEvent):
    """The person read the bot's messages up to ``watermark`` (``page``/``message_reads``)."""

    watermark: float | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Change(Event):
    """An item of an entry's ``changes`` list; ``value`` is the change's value as delivered."""

    value: dict[str, Any] = field(default_factory=dict)
    verb: str | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Mention(Change):
    """The bot was @-mentioned in a group post or comment (``page``/``mention``)."""

    item: str | None = None
    post_id: str | None = None
    comment_id: str | None = None
    message_tags: list[dict[str, Any]] = field(default_factory=list)
    permalink_url: str | None = None
    kinds: ClassVar[tuple[str, ...]] = ("mention", "any")


@dataclass(slots=True, kw_only=True, eq=False)
class GroupPost(Change):
    """A post was added, edited or deleted in a group (``group``/``posts``)."""

    post_id: str | None = None
    type: str | None = None
    target_type: str | None = None
    created_time: Any = None
    permalink_url: str | None = None
    attachments: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class GroupComment(Change):
    """A comment was added, edited or deleted on a group post (``group``/``comments``)."""

    comment_id: str | None = None
    post_id: str | None = None
    created_time: Any = None


@dataclass(slots=True, kw_only=True, eq=False)
class Membership(Change):
    """Someone joined or left a group (``group``/``membership``)."""

    member_id: str | None = None
    actor_id: str | None = None
    update_time: Any = None


@dataclass(slots=True, kw_only=True, eq=False)
class UserChange(Change):
    """A person's status or activity changed (``user``/``status``, ``user``/``events``)."""


@dataclass(slots=True, kw_only=True, eq=False)
class SecurityEvent(Change):
    """An admin action or a session event (``workplace_security``/``admin_activity``, ``sessions``)."""

    event_name: str | None = None
    actor_id: str | None = None
    target_id: str | None = None
    ip: str | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class LinkRequest(Change):
    """A link-preview or collection request (``link``/``preview``, ``link``/``collection``).

    ``sender_id`` is the viewer: what the answer may show depends on who asks.
    """

    link: str | None = None
    kinds: ClassVar[tuple[str, ...]] = ("link", "any")

    @property
    def viewer_id(self) -> str | None:
        """The person the preview is for."""
        return self.sender_id
