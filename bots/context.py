"""``Context``: what a handler uses to answer: ``ctx.reply``, ``ctx.comment``, and the event's match.

Every effect goes through :meth:`Context.call`, the one place a later outbox can collect them.
"""

from __future__ import annotations

import logging
from typing import Any

from .events import Change, Event, MessagingEvent

QuickReplies = list[tuple[str, str]] | list[dict] | None


class Context:
    """The second argument of every handler: the bot, the Graph client and the answers it sends."""

    def __init__(self, bot: Any, event: Event, graph: Any, logger: logging.Logger | None = None) -> None:
        self.bot = bot
        self.event = event
        self.graph = graph
        self.logger = logger or logging.getLogger(f"bots.{bot.name}")
        self.match: Any = None
        self.sent: list[dict] = []

    def reply(self, text: str, quick_replies: QuickReplies = None) -> dict:
        """Answer where the event came from: the sender of a 1:1 chat, the thread of a group chat,
        or, for a post, comment or mention, a comment under it."""
        if not isinstance(self.event, MessagingEvent):
            if quick_replies:
                raise ValueError("quick replies exist only in chat: this event came from a post or comment")
            return self.comment(text)
        message: dict[str, Any] = {"text": _text(text)}
        if quick_replies:
            message["quick_replies"] = [_quick_reply(item) for item in quick_replies]
        return self.send_message(message)

    def send_message(self, message: dict) -> dict:
        """Send a prepared Send API ``message`` body to the chat the event came from."""
        body = {"recipient": self.recipient(), "messaging_type": "RESPONSE", "message": message}
        return self.call("POST", "me/messages", body)

    def comment(self, text: str) -> dict:
        """Comment under the comment, post or mention the event is about (``POST /{id}/comments``)."""
        target = self._comment_target()
        return self.call("POST", f"{target}/comments", {"message": _text(text)})

    def recipient(self) -> dict:
        """The Send API recipient for an answer: ``{"thread_key": ...}`` in a group chat, else ``{"id": ...}``."""
        if self.event.thread_id:
            return {"thread_key": self.event.thread_id}
        if self.event.sender_id is None:
            raise ValueError(f"{self.event.describe()} has no sender to answer")
        return {"id": self.event.sender_id}

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """Make one Graph call on the bot's behalf and record it in ``ctx.sent``."""
        answer = self.graph.request(method, path, json=body)
        self.sent.append({"method": method, "path": path, "body": body, "answer": answer})
        return answer

    def _comment_target(self) -> str:
        event = self.event
        if isinstance(event, Change):
            target = getattr(event, "comment_id", None) or getattr(event, "post_id", None)
            if target:
                return target
        raise ValueError(f"ctx.comment needs a post, comment or mention; {event.describe()} is none "
                         "(use ctx.reply in chat)")


def _text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a message needs non-empty text")
    return text


def _quick_reply(item: tuple[str, str] | dict) -> dict:
    if isinstance(item, dict):
        return {"content_type": "text", **item}
    title, payload = item
    return {"content_type": "text", "title": title, "payload": payload}
