"""``Context``: the second argument of every handler. It can do everything ``bot.graph`` can,
with the event's conversation as the default target, and carries the matcher's result and the
conversation's state.

Under the durable inbox the context has an :class:`~bots.outbox.Outbox`: calls that change
something are collected and sent after the handler succeeds; only ``ctx.get`` goes out at once.
``ctx.send``, ``ctx.post``, ``ctx.comment`` and ``ctx.reply`` return handles
(:class:`~bots.refs.Ref`) to their answer's ids, which later calls of the same run take as ids or
thread keys: ``ctx.comment("x", target=ctx.post(group, "y"))``. Under every inbox the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .actions import Id, QuickReplies, Sent
from .events import Change, Event, MessagingEvent
from .graph import GraphClient
from .outbox import Effect, Outbox, OutboxActions
from .refs import Ref, Run
from .state import State

if TYPE_CHECKING:
    from .bot import Bot


class Context(OutboxActions):
    """What a handler answers with: ``ctx.reply``, ``ctx.comment``, ``ctx.typing`` and the rest."""

    messaging_type = "RESPONSE"

    def __init__(self, bot: Bot, event: Event, client: GraphClient, logger: logging.Logger | None = None, *,
                 outbox: Outbox | None = None, state: State | None = None, attempt: int = 1,
                 last_attempt: bool = True) -> None:
        super().__init__(client, outbox)
        self.bot = bot
        self.event = event
        self.logger = logger or bot.logger
        #: The regex match of the handler's matcher (``ctx.match.group("floor")``); None when it matched
        #: without one.
        self.match: re.Match[str] | None = None
        self.sent: list[dict[str, Any]] = []
        self.state: State = state if state is not None else State()
        #: Which run of this event this is (1 the first time; a durable inbox runs a failed event again).
        self.attempt = attempt
        #: True when a failure now is final: the event is parked, not retried. Under a durable inbox an error
        #: handler's messages go out only on the last attempt; on earlier ones they are dropped with the run.
        self.last_attempt = last_attempt

    def rollback(self) -> None:
        """Drop what the handler collected and changed: it failed, so none of it may take effect,
        and its handles are void."""
        if self.outbox is not None:
            self.outbox.clear()
        self.run = Run()
        self.state.restore()

    @property
    def graph(self) -> OutboxActions:
        """The same calls without the event's defaults: ``ctx.graph.send(..., to=someone_else)``."""
        return OutboxActions(self.client, self.outbox, self.run)

    def reply(self, message: str | dict[str, Any], quick_replies: QuickReplies = None) -> Sent | Ref:
        """Answer where the event came from: the sender of a 1:1 chat (through its ``user_ref`` for a
        Messenger chat plugin guest), the thread of a group chat, or, for a post, comment or mention, a
        comment under it."""
        if isinstance(self.event, MessagingEvent):
            return self.send(message, quick_replies=quick_replies)
        if quick_replies or not isinstance(message, str):
            raise ValueError("quick replies and templates exist only in chat: this event came from a post or comment")
        return self.comment(message)

    def send(self, message: str | dict[str, Any], *, to: Id | None = None, ids: Sequence[Id] | None = None,
             thread: Id | None = None, quick_replies: QuickReplies = None, user_ref: str | None = None) -> Sent:
        """Send a message; without a target, to the conversation the event came from.

        Returns handles to the answer's ``message_id``, ``recipient_id`` and ``thread_key`` (Messenger
        answers a send to a ``user_ref`` with no ``recipient_id``).
        """
        if not (to or ids or thread or user_ref):
            return super().send(message, quick_replies=quick_replies, **self._conversation())
        return super().send(message, to=to, ids=ids, thread=thread, quick_replies=quick_replies, user_ref=user_ref)

    def sender_action(self, action: str, *, to: Id | None = None, thread: Id | None = None,
                      user_ref: str | None = None) -> None:
        if not (to or thread or user_ref):
            return super().sender_action(action, **self._conversation())
        super().sender_action(action, to=to, thread=thread, user_ref=user_ref)

    def comment(self, text: str, *, target: Id | None = None) -> Ref:
        """Comment under the comment, post or mention the event is about, or under ``target``;
        returns a handle to the new comment's id."""
        # OutboxActions answers every call with handles, so the id is a Ref.
        return cast(Ref, super().comment(text, target=target or self._comment_target()))

    def post(self, group_id: Id, text: str, markdown: bool = False) -> Ref:
        """Post in a group; returns a handle to the new post's id."""
        return cast(Ref, super().post(group_id, text, markdown))

    def rename_thread(self, name: str, *, thread: Id | None = None) -> None:
        """Rename the group chat the event came from (or ``thread``)."""
        super().rename_thread(name, thread=thread or self._thread())

    def add_participants(self, ids: Sequence[Id], *, thread: Id | None = None) -> None:
        """Add people to the group chat the event came from (or ``thread``)."""
        super().add_participants(ids, thread=thread or self._thread())

    def remove_participants(self, ids: Sequence[Id], *, thread: Id | None = None) -> None:
        """Remove people from the group chat the event came from (or ``thread``)."""
        super().remove_participants(ids, thread=thread or self._thread())

    def _deliver(self, effect: Effect) -> dict[str, Any]:
        """Make one Graph call on the bot's behalf (or queue it in the outbox) and record it in ``ctx.sent``."""
        answer = super()._deliver(effect)
        self.sent.append({"method": effect.method, "path": effect.path, "body": effect.body, "answer": answer})
        return answer

    def _conversation(self) -> dict[str, str]:
        """The event's chat as the target of a send: its thread, its sender, or the chat plugin guest's
        ``user_ref`` when that is all the sender has; :func:`bots.actions.recipient` makes it a recipient."""
        event = self.event
        if event.thread_id:
            return {"thread": event.thread_id}
        if isinstance(event, MessagingEvent):
            if event.sender_id is not None:
                return {"to": event.sender_id}
            if event.user_ref is not None:
                return {"user_ref": event.user_ref}
        raise ValueError(f"{event.describe()} is not a chat: say who gets the message with to=, ids=, thread= or "
                         "user_ref=")

    def _thread(self) -> str:
        if not self.event.thread_id:
            raise ValueError(f"{self.event.describe()} did not come from a group chat: pass thread=")
        return self.event.thread_id

    def _comment_target(self) -> str:
        event = self.event
        if isinstance(event, Change):
            target: object = getattr(event, "comment_id", None) or getattr(event, "post_id", None)
            if target and isinstance(target, str):
                return target
        raise ValueError(f"ctx.comment needs a post, comment or mention; {event.describe()} is none "
                         "(use ctx.reply in chat)")
