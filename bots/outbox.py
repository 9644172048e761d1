"""Effects a handler asks for, held until the handler has finished: the outbox.

Under the durable inbox a handler's sends, comments and likes are not made while it runs; they
are collected here and committed together with the event's completion, then delivered by the
sender. A handler that fails half-way therefore sends nothing, and its retry starts clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .actions import Actions, QuickReplies, Sent
from .graph import GraphClient


@dataclass(frozen=True, slots=True)
class Effect:
    """One Graph call that changes something: ``POST me/messages`` with its JSON body."""

    method: str
    path: str
    body: dict | None

    def to_dict(self) -> dict:
        return {"method": self.method, "path": self.path, "body": self.body}

    @classmethod
    def from_dict(cls, data: dict) -> Effect:
        return cls(data["method"], data["path"], data.get("body"))

    def describe(self) -> str:
        """A label for logs and dead letters with no message content in it."""
        return f"{self.method} {self.path}"


class Outbox:
    """The effects of one handler run, in the order the handler asked for them."""

    def __init__(self) -> None:
        self.effects: list[Effect] = []

    def add(self, method: str, path: str, body: dict | None) -> None:
        self.effects.append(Effect(method, path, body))

    def clear(self) -> None:
        """Forget what was collected: the handler failed, so none of it may go out."""
        self.effects.clear()

    def __len__(self) -> int:
        return len(self.effects)


class OutboxActions(Actions):
    """:class:`Actions` that put effects in ``outbox`` (when there is one) instead of calling at once.

    ``send(ids=...)`` still goes out at once: its answer holds the new thread's key.
    """

    def __init__(self, client: GraphClient, outbox: Outbox | None = None) -> None:
        super().__init__(client)
        self.outbox = outbox
        self._at_once = False

    def send(self, message: str | dict, *, to: str | None = None, ids: Sequence[str] | None = None,
             thread: str | None = None, quick_replies: QuickReplies = None) -> Sent:
        self._at_once = bool(ids)
        try:
            return super().send(message, to=to, ids=ids, thread=thread, quick_replies=quick_replies)
        finally:
            self._at_once = False

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """Queue the call in the outbox, or make it now when there is no outbox or its answer is needed."""
        if self.outbox is not None and not self._at_once:
            self.outbox.add(method, path, body)
            return {}
        return super().call(method, path, body)
