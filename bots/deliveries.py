"""Webhook bodies as Workplace sends them, for any topic and field: for tests, benchmarks and
``flask bots simulate``. Pure data builders; nothing here signs or sends.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

PAGE_ID = "105678357661487"
USER_ID = "100071234567890"
COMMUNITY_ID = "1394518670594144"


class Deliveries:
    """Builds webhook bodies as Workplace sends them, for any topic and field."""

    def __init__(self, page_id: str = PAGE_ID, sender: str = USER_ID, community: str | None = COMMUNITY_ID) -> None:
        self.page_id = page_id
        self.sender = sender
        self.community = community
        self._run = secrets.token_hex(3)
        self._mids = itertools.count(1)
        self._clock = itertools.count(1_700_000_000_000, 1000)

    def message(self, text: str | None = "hello", *, sender: str | None = None, thread: str | None = None,
                mid: str | None = None, quick_reply: str | None = None, attachments: list[dict[str, Any]] | None = None,
                is_echo: bool = False, user_ref: str | None = None, **extra: Any) -> dict[str, Any]:
        """A chat message (``page``/``messages``); ``thread`` makes it a group-chat message, ``user_ref``
        one from a Messenger chat plugin guest."""
        message: dict[str, Any] = {"mid": mid or f"m_{self._run}_{next(self._mids)}"}
        if text is not None:
            message["text"] = text
        if quick_reply is not None:
            message["quick_reply"] = {"payload": quick_reply}
        if attachments:
            message["attachments"] = attachments
        if is_echo:
            message["is_echo"] = True
        return self.messaging({"message": message, **extra}, sender=sender, thread=thread, user_ref=user_ref)

    def quick_reply(self, payload: str, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """A quick-reply tap: a message carrying the quick reply's title and payload."""
        return self.message(text if text is not None else payload.title(), quick_reply=payload, **kwargs)

    def postback(self, payload: str, title: str | None = None, *, sender: str | None = None,
                 thread: str | None = None, user_ref: str | None = None) -> dict[str, Any]:
        """A button, menu or Get Started tap (``page``/``messaging_postbacks``)."""
        return self.messaging({"postback": {"title": title or payload.title(), "payload": payload}},
                              sender=sender, thread=thread, user_ref=user_ref)

    def delivery(self, mids: list[str], watermark: int = 1_700_000_000_000, **kwargs: Any) -> dict[str, Any]:
        """Messages the bot sent were delivered (``page``/``message_deliveries``)."""
        return self.messaging({"delivery": {"mids": mids, "watermark": watermark}}, **kwargs)

    def read(self, watermark: int = 1_700_000_000_000, **kwargs: Any) -> dict[str, Any]:
        """The person read the bot's messages (``page``/``message_reads``)."""
        return self.messaging({"read": {"watermark": watermark}}, **kwargs)

    def messaging(self, item: dict[str, Any], *, sender: str | None = None, thread: str | None = None,
                  user_ref: str | None = None) -> dict[str, Any]:
        """Any ``messaging`` item, with sender, recipient and timestamp filled in.

        With ``user_ref`` the sender is Messenger's chat plugin guest, ``{"user_ref": ...}`` alone: no id,
        no community.
        """
        full = {"sender": self._sender(sender, user_ref), "recipient": {"id": self.page_id},
                "timestamp": next(self._clock), **item}
        if thread:
            full["thread"] = {"id": thread}
        return envelope("page", [{"id": self.page_id, "time": full["timestamp"], "messaging": [full]}])

    def _sender(self, sender: str | None, user_ref: str | None) -> dict[str, Any]:
        """The ``sender`` of a ``messaging`` item: a Workplace person, or a chat plugin guest's ``user_ref``."""
        if user_ref is not None:
            if sender is not None:
                raise ValueError("a sender has an id or a user_ref, not both")
            return {"user_ref": user_ref}
        party: dict[str, Any] = {"id": sender or self.sender}
        if self.community:
            party["community"] = {"id": self.community}
        return party

    def mention(self, text: str = "@helpdesk can you help?", *, post_id: str = "1234567890_987654321",
                comment_id: str | None = None, sender: str | None = None) -> dict[str, Any]:
        """The bot was @-mentioned in a post, or in a comment when ``comment_id`` is given."""
        value: dict[str, Any] = {
            "item": "comment" if comment_id else "post", "verb": "add", "post_id": post_id,
            "message": text, "from": {"id": sender or self.sender},
            "message_tags": [{"id": self.page_id, "name": "bot", "type": "user", "offset": 0, "length": 9}],
            "permalink_url": f"https://work.example.com/groups/1/permalink/{post_id.split('_')[-1]}/",
        }
        if comment_id:
            value["comment_id"] = comment_id
        return self.change("page", "mention", value, entry_id=self.page_id)

    def change(self, object: str, field: str, value: Any, *, entry_id: str = "1234567890", time: int = 1_700_000_000
               ) -> dict[str, Any]:
        """Any ``changes`` item: ``change("group", "comments", {...})``."""
        return envelope(object, [{"id": entry_id, "time": time, "changes": [{"field": field, "value": value}]}])


def envelope(object: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A delivery body: ``{"object": ..., "entry": [...]}``."""
    return {"object": object, "entry": entries}


def batch(*bodies: dict[str, Any]) -> dict[str, Any]:
    """Several deliveries of one object merged into one, as Workplace batches them."""
    objects = {body["object"] for body in bodies}
    if len(objects) != 1:
        raise ValueError(f"a batch holds one object, got {sorted(objects)}")
    return envelope(objects.pop(), [entry for body in bodies for entry in body["entry"]])
