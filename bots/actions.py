"""Everything a bot can say or do through the Graph API, one call each, checked before it leaves.

``bot.graph`` is an :class:`Actions` for use outside a handler; a handler's ``ctx`` is one too,
with the event's conversation as the default target. Every effect goes through
:meth:`Actions.call`, the one place an outbox can collect them.

Ids and thread keys may be handles (:class:`~bots.refs.Ref`) that a handler's earlier calls
returned. ``bot.graph`` returns plain values and takes a handle whose value is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import messages
from .graph import GraphClient
from .refs import Ref, fill, join

QuickReplies = Sequence[tuple[str, str] | dict[str, Any]] | None
Id = str | Ref


@dataclass(frozen=True, slots=True)
class Sent:
    """What the Send API answered: the message id, and for a send to several people the new thread.

    Plain strings from ``bot.graph``; handles (:class:`~bots.refs.Ref`) from ``ctx`` in a handler.
    """

    message_id: Id | None
    recipient_id: Id | None = None
    thread_key: Id | None = None


class Actions:
    """The Graph API calls a bot makes, as methods."""

    messaging_type = "UPDATE"

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def send(self, message: str | dict[str, Any], *, to: Id | None = None, ids: Sequence[Id] | None = None,
             thread: Id | None = None, quick_replies: QuickReplies = None, user_ref: str | None = None) -> Sent:
        """Send a message to one person (``to``), a new group chat (``ids``), a thread (``thread``), or a
        Messenger chat plugin guest known only by ``user_ref``.

        ``message`` is text, or a message body from :mod:`bots.messages`; it is checked against
        Messenger's rules first, and nothing is sent when it breaks one.
        """
        body = messages.text(message, quick_replies) if isinstance(message, str) else messages.validate(message)
        answer = self.call("POST", "me/messages", {"recipient": recipient(to, ids, thread, user_ref),
                                                   "messaging_type": self.messaging_type, "message": body})
        return Sent(*(self._result(answer, field) for field in ("message_id", "recipient_id", "thread_key")))

    def sender_action(self, action: str, *, to: Id | None = None, thread: Id | None = None,
                      user_ref: str | None = None) -> None:
        """Show ``typing_on``, ``typing_off`` or ``mark_seen`` in a conversation."""
        self.call("POST", "me/messages", {"recipient": recipient(to, None, thread, user_ref),
                                          "sender_action": messages.sender_action(action)})

    def typing(self, on: bool = True, *, to: Id | None = None, thread: Id | None = None,
               user_ref: str | None = None) -> None:
        """Show (or stop showing) the typing indicator."""
        self.sender_action("typing_on" if on else "typing_off", to=to, thread=thread, user_ref=user_ref)

    def mark_seen(self, *, to: Id | None = None, thread: Id | None = None, user_ref: str | None = None) -> None:
        """Mark the person's last message as seen."""
        self.sender_action("mark_seen", to=to, thread=thread, user_ref=user_ref)

    def comment(self, text: str, *, target: Id | None = None) -> Id | None:
        """Comment under the post or comment ``target`` (``POST /{id}/comments``); returns the comment id.
        The text comes first and the target is named, as on ``ctx``, where it defaults to the event's."""
        comment_id: Id | None = self._result(self.call("POST", "comments", {"message": _plain(text, 8000)},
                                                     on=_id(_given(target, "target", "comment"))), "id")
        return comment_id

    def post(self, group_id: Id, text: str, markdown: bool = False) -> Id | None:
        """Post in a group (``POST /{group}/feed``), with Markdown formatting if asked; returns the post id."""
        body: dict[str, Any] = {"message": _plain(text, None)}
        if markdown:
            body["formatting"] = "MARKDOWN"
        post_id: Id | None = self._result(self.call("POST", "feed", body, on=_id(group_id)), "id")
        return post_id

    def like(self, object_id: Id) -> bool:
        """Like a post or comment (``POST /{id}/likes``)."""
        return bool(self.call("POST", "likes", {}, on=_id(object_id)).get("success", True))

    def rename_thread(self, name: str, *, thread: Id | None = None) -> None:
        """Rename the group chat ``thread`` (``POST /{thread}/threadname``)."""
        self.call("POST", "threadname", {"name": _plain(name, 250)},
                  on=_thread(_given(thread, "thread", "rename_thread")))

    def add_participants(self, ids: Sequence[Id], *, thread: Id | None = None) -> None:
        """Add people to the group chat ``thread``."""
        self.call("POST", "participants", {"to": _ids(ids)}, on=_thread(_given(thread, "thread", "add_participants")))

    def remove_participants(self, ids: Sequence[Id], *, thread: Id | None = None) -> None:
        """Remove people from the group chat ``thread``."""
        self.call("DELETE", "participants", {"to": _ids(ids)},
                  on=_thread(_given(thread, "thread", "remove_participants")))

    def get(self, path: str, fields: Sequence[str] | str | None = None, **params: Any) -> dict[str, Any]:
        """Read anything: ``get("12345", fields=["name", "email"])``."""
        if fields:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        return self.client.get(path, **params)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             on: Id | None = None) -> dict[str, Any]:
        """Make one Graph call that changes something (on ``POST /{on}/{path}`` when ``on`` is given);
        every effect above comes through here."""
        return self.client.request(method, join(self._use(on), path), json=fill(body, self._use))

    def _use(self, value: Any) -> Any:
        """A handle's known value, since a call made at once cannot wait for one still pending."""
        if not isinstance(value, Ref):
            return value
        if not value.known:
            raise ValueError(f"{value!r} waits for an effect still in its handler run's outbox: "
                             "use it in that run, through ctx")
        return value.require()

    def _result(self, answer: dict[str, Any], field: str) -> Any:
        """``field`` of Graph's answer as this kind of Actions returns it: the plain value."""
        return answer.get(field)


def recipient(to: Id | None, ids: Sequence[Id] | None, thread: Id | None,
              user_ref: str | None = None) -> dict[str, Any]:
    """The Send API recipient for exactly one of ``to``, ``ids``, ``thread`` and ``user_ref``: the one
    place a message's addressee is decided, for ``bot.graph`` and ``ctx`` alike."""
    given = [name for name, value in (("to", to), ("ids", ids), ("thread", thread), ("user_ref", user_ref)) if value]
    if len(given) != 1:
        raise ValueError("say who gets the message with exactly one of to=, ids=, thread= or user_ref= "
                         f"(got {given or 'none'})")
    if to:
        return {"id": _id(to)}
    if thread:
        return {"thread_key": _thread(thread)}
    if user_ref:
        return {"user_ref": _user_ref(user_ref)}
    return {"ids": _ids(ids or ())}


def _plain(text: str, limit: int | None) -> str:
    if not isinstance(text, str) or not text.strip():
        raise messages.MessageError("message", "must be non-empty text")
    if limit is not None and len(text) > limit:
        raise messages.MessageError("message", f"at most {limit} characters")
    return text


def _id(value: Id) -> Id:
    """``value`` if it is a Graph id, or a handle to one (its value checked when known)."""
    if isinstance(value, Ref):
        if value.known:
            _id(value.require())
        return value
    if not isinstance(value, str) or not value or any(char in value for char in "/?{}"):
        raise ValueError(f"not a Graph id: {value!r}")
    return value


def _thread(value: Id) -> Id:
    """``value`` if it is a thread key, or a handle to a send's ``thread_key``."""
    if isinstance(value, Ref):
        if value.field != "thread_key":
            raise ValueError(f"a thread key handle is a send's .thread_key, got {value!r}")
        if value.known:
            _thread(value.require())
        return value
    if not isinstance(value, str) or not value.startswith("t_"):
        raise ValueError(f"a thread key looks like t_<digits>, got {value!r}")
    return _id(value)


def _user_ref(value: str) -> str:
    """``value`` if it can be a chat plugin's user reference: non-empty text."""
    if not isinstance(value, str):
        raise ValueError(f"a user_ref is the text Messenger's chat plugin gave, got {value!r}")
    return value


def _ids(values: Sequence[Id]) -> list[Id]:
    if isinstance(values, str) or not values:
        raise ValueError("ids must be a non-empty list of people's ids")
    return [_id(value) for value in values]


def _given(value: Id | None, name: str, method: str) -> Id:
    """``value``, which outside a handler (no event to default to) must be given: a clear error otherwise."""
    if value is None:
        raise TypeError(f"bot.graph.{method}() needs {name}=: outside a handler there is no event to default to")
    return value
