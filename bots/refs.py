"""Handles: what a handler's sends, posts and comments return, standing for a field of Graph's answer.

Under the outbox a handler's effects are made after it has returned, so ``ctx.post(...)`` cannot
give the new post's id; it gives a :class:`Ref` to the ``id`` of that effect's answer instead,
which later calls of the same handler run take wherever an id or thread key goes. The queued
effect holds a JSON placeholder there, filled in by :func:`bots.outbox.resolve` once the earlier
answer is known. With no outbox the call is made at once and the handle carries the value.

Placeholders name the effect by its position in the run's outbox (``Outbox.effects[i]``) and the
field of its answer: ``{"$ref": [i, "field"]}`` in a body, ``{$ref:i.field}`` as the object of a
path (``{$ref:0.id}/comments``). Ids never contain braces, so neither can be mistaken for one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

KEY = "$ref"
TOKEN = re.compile(r"\{\$ref:(\d+)\.(\w+)\}")


class UnresolvedRef(ValueError):
    """A handle's value is not known: the earlier effect's answer is missing or lacks the field."""


class Run:
    """One handler run: the handles its effects give out are good in this run only.

    ``made`` counts the run's effects, so effect ``i`` of a run is ``Outbox.effects[i]``.
    """

    __slots__ = ("made",)

    def __init__(self) -> None:
        self.made = 0

    def next(self) -> int:
        """The position of the effect about to be made or queued."""
        self.made += 1
        return self.made - 1


class Ref:
    """A field (``id``, ``message_id``, ``thread_key`` ...) of the answer to effect ``effect`` of a run.

    ``value`` is the field's value once known: at once with no outbox (None when Graph's answer
    had no such field), never during the run under the outbox, whose sender learns it on delivery.
    """

    __slots__ = ("_value", "effect", "field", "known", "run")

    def __init__(self, run: Run, effect: int, field: str, value: Any = None, known: bool = False) -> None:
        self.run, self.effect, self.field, self._value, self.known = run, effect, field, value, known

    @property
    def value(self) -> Any:
        """The field's value when known, else None."""
        return self._value

    def require(self) -> str:
        """The known value, or :class:`UnresolvedRef` when the answer lacked it."""
        if not self.known or not isinstance(self._value, str) or not self._value:
            raise UnresolvedRef(f"effect {self.effect} of this handler run has no {self.field} in its answer")
        return self._value

    @property
    def placeholder(self) -> dict[str, Any]:
        """How an effect stores this handle until the sender resolves it."""
        return {KEY: [self.effect, self.field]}

    def __repr__(self) -> str:
        state = repr(self._value) if self.known else "pending"
        return f"Ref(effect={self.effect}, field={self.field!r}, value={state})"


class Answer(dict[str, Any]):
    """Graph's answer to one effect of a run (empty while it waits in the outbox), handing out handles."""

    def __init__(self, run: Run, effect: int, answer: dict[str, Any] | None, queued: bool) -> None:
        super().__init__(answer or {})
        self.run, self.effect, self.queued = run, effect, queued

    def ref(self, field: str) -> Ref:
        """A handle to ``field`` of this answer: pending while queued, else carrying the value."""
        if self.queued:
            return Ref(self.run, self.effect, field)
        return Ref(self.run, self.effect, field, self.get(field), known=True)


def is_placeholder(value: Any) -> bool:
    """Whether ``value`` is a body placeholder ``{"$ref": [i, "field"]}``."""
    return (isinstance(value, dict) and set(value) == {KEY} and isinstance(value[KEY], list)
            and len(value[KEY]) == 2 and isinstance(value[KEY][0], int) and isinstance(value[KEY][1], str))


def token(placeholder: dict[str, Any]) -> str:
    """The path form of a body placeholder: ``{$ref:i.field}``."""
    index, field = placeholder[KEY]
    return f"{{{KEY}:{index}.{field}}}"


def join(on: str | dict[str, Any] | None, edge: str) -> str:
    """The path ``{on}/{edge}`` (just ``edge`` with no object), a placeholder object written as its token."""
    if on is None:
        return edge
    return f"{token(on) if isinstance(on, dict) else on}/{edge}"


def fill(body: Any, use: Callable[[Any], Any]) -> Any:
    """``body`` with every handle (or body placeholder) in it replaced by ``use(it)``."""
    if isinstance(body, Ref) or is_placeholder(body):
        return use(body)
    if isinstance(body, dict):
        return {key: fill(value, use) for key, value in body.items()}
    if isinstance(body, list):
        return [fill(value, use) for value in body]
    return body


def wanted(path: str, body: Any) -> list[tuple[int, str]]:
    """The ``(effect, field)`` pairs an effect's path and body refer to, in order."""
    found = [(int(index), field) for index, field in TOKEN.findall(path)]
    fill(body, lambda placeholder: found.append(tuple(placeholder[KEY])))
    return found
