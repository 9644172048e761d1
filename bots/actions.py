"""Everything a bot can say or do through the Graph API, one call each, checked before it leaves.

``bot.graph`` is an :class:`Actions` for use outside a handler; a handler's ``ctx`` is one too,
with the event's conversation as the default target. Every effect goes through
:meth:`Actions.call`, the one place an outbox can collect them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import messages
from .graph import GraphClient

QuickReplies = Sequence[tuple[str, str] | dict] | None


@dataclass(frozen=True, slots=True)
class Sent:
    """What the Send API answered: the message id, and for a send to several people the new thread."""

    message_id: str | None
    recipient_id: str | None = None
    thread_key: str | None = None


class Actions:
    """The Graph API calls a bot makes, as methods."""

    messaging_type = "UPDATE"

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def send(self, message: str | dict, *, to: str | None = None, ids: Sequence[str] | None = None,
             thread: str | None = None, quick_replies: QuickReplies = None) -> Sent:
        """Send a message to one person (``to``), a new group chat (``ids``) or a thread (``thread``).

        ``message`` is text, or a message body from :mod:`bots.messages`; it is checked against
        Messenger's rules first, and nothing is sent when it breaks one.
        """
        body = messages.text(message, quick_replies) if isinstance(message, str) else messages.validate(message)
        answer = self.call("POST", "me/messages", {"recipient": recipient(to, ids, thread),
                                                   "messaging_type": self.messaging_type, "message": body})
        return Sent(answer.get("message_id"), answer.get("recipient_id"), answer.get("thread_key"))

    def sender_action(self, action: str, *, to: str | None = None, thread: str | None = None) -> None:
        """Show ``typing_on``, ``typing_off`` or ``mark_seen`` in a conversation."""
        self.call("POST", "me/messages", {"recipient": recipient(to, None, thread),
                                          "sender_action": messages.sender_action(action)})

    def typing(self, on: bool = True, *, to: str | None = None, thread: str | None = None) -> None:
        """Show (or stop showing) the typing indicator."""
        self.sender_action("typing_on" if on else "typing_off", to=to, thread=thread)

    def mark_seen(self, *, to: str | None = None, thread: str | None = None) -> None:
        """Mark the person's last message as seen."""
        self.sender_action("mark_seen", to=to, thread=thread)

    def comment(self, target: str, text: str) -> str | None:
        """Comment under a post or comment (``POST /{id}/comments``); returns the comment id."""
        return self.call("POST", f"{_id(target)}/comments", {"message": _plain(text, 8000)}).get("id")

    def post(self, group_id: str, text: str, markdown: bool = False) -> str | None:
        """Post in a group (``POST /{group}/feed``), with Markdown formatting if asked; returns the post id."""
        body: dict[str, Any] = {"message": _plain(text, None)}
        if markdown:
            body["formatting"] = "MARKDOWN"
        return self.call("POST", f"{_id(group_id)}/feed", body).get("id")

    def like(self, object_id: str) -> bool:
        """Like a post or comment (``POST /{id}/likes``)."""
        return bool(self.call("POST", f"{_id(object_id)}/likes", {}).get("success", True))

    def rename_thread(self, thread: str, name: str) -> None:
        """Rename a group chat (``POST /{thread}/threadname``)."""
        self.call("POST", f"{_thread(thread)}/threadname", {"name": _plain(name, 250)})

    def add_participants(self, thread: str, ids: Sequence[str]) -> None:
        """Add people to a group chat."""
        self.call("POST", f"{_thread(thread)}/participants", {"to": _ids(ids)})

    def remove_participants(self, thread: str, ids: Sequence[str]) -> None:
        """Remove people from a group chat."""
        self.call("DELETE", f"{_thread(thread)}/participants", {"to": _ids(ids)})

    def get(self, path: str, fields: Sequence[str] | str | None = None, **params: Any) -> dict:
        """Read anything: ``get("12345", fields=["name", "email"])``."""
        if fields:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        return self.client.get(path, **params)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """Make one Graph call that changes something; every effect above comes through here."""
        return self.client.request(method, path, json=body)


def recipient(to: str | None, ids: Sequence[str] | None, thread: str | None) -> dict:
    """The Send API recipient for exactly one of ``to``, ``ids`` and ``thread``."""
    given = [name for name, value in (("to", to), ("ids", ids), ("thread", thread)) if value]
    if len(given) != 1:
        raise ValueError(f"say who gets the message with exactly one of to=, ids= or thread= (got {given or 'none'})")
    if to:
        return {"id": _id(to)}
    if thread:
        return {"thread_key": _thread(thread)}
    return {"ids": _ids(ids or ())}


def _plain(text: str, limit: int | None) -> str:
    if not isinstance(text, str) or not text.strip():
        raise messages.MessageError("message", "must be non-empty text")
    if limit is not None and len(text) > limit:
        raise messages.MessageError("message", f"at most {limit} characters")
    return text


def _id(value: str) -> str:
    if not isinstance(value, str) or not value or "/" in value or "?" in value:
        raise ValueError(f"not a Graph id: {value!r}")
    return value


def _thread(value: str) -> str:
    if not isinstance(value, str) or not value.startswith("t_"):
        raise ValueError(f"a thread key looks like t_<digits>, got {value!r}")
    return _id(value)


def _ids(values: Sequence[str]) -> list[str]:
    if isinstance(values, str) or not values:
        raise ValueError("ids must be a non-empty list of people's ids")
    return [_id(value) for value in values]
