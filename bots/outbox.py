"""Effects a handler asks for, held until the handler has finished: the outbox.

Under the durable inbox a handler's sends, comments and likes are not made while it runs; they
are collected here and committed together with the event's completion, then delivered by the
sender. A handler that fails half-way therefore sends nothing, and its retry starts clean.

What a queued call returns is a handle (:class:`~bots.refs.Ref`) to a field of its future
answer; an effect that uses one stores a placeholder, which :func:`resolve` fills in from the
answers of the run's earlier effects just before the sender makes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .actions import Actions, Id
from .graph import GraphClient
from .refs import KEY, TOKEN, Answer, Ref, Run, UnresolvedRef, fill, join, wanted

__all__ = ["Effect", "Outbox", "OutboxActions", "UnresolvedRef", "resolve"]


@dataclass(frozen=True, slots=True)
class Effect:
    """One Graph call that changes something: ``POST me/messages`` with its JSON body.

    Its path and body may hold placeholders for handles (see :mod:`bots.refs`); they are JSON.
    """

    method: str
    path: str
    body: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Effect:
        return cls(data["method"], data["path"], data.get("body"))

    def describe(self) -> str:
        """A label for logs and dead letters with no message content in it."""
        return f"{self.method} {self.path}"

    def refers_to(self) -> list[tuple[int, str]]:
        """The ``(effect, field)`` answers of the run's earlier effects this one needs, in order."""
        return wanted(self.path, self.body)


def resolve(effect: Effect, results: Sequence[dict[str, Any] | None]) -> Effect:
    """``effect`` with every placeholder replaced by the field of the earlier answer it names.

    ``results[i]`` is Graph's answer to effect ``i`` of the same handler run (None if unknown);
    raises :class:`UnresolvedRef`, naming the effect and the field, when an answer lacks it.
    """
    if not effect.refers_to():
        return effect

    def value(index: int, field: str, in_path: bool = False) -> str:
        answer = results[index] if 0 <= index < len(results) else None
        found = answer.get(field) if isinstance(answer, dict) else None
        if not isinstance(found, str) or not found or (in_path and any(char in found for char in "/?{}")):
            lacks = "has no answer" if answer is None else f"answered no usable {field}"
            raise UnresolvedRef(f"{effect.describe()} needs the {field} of effect {index} of its handler run, "
                                f"which {lacks}")
        return found

    path = TOKEN.sub(lambda match: value(int(match[1]), match[2], in_path=True), effect.path)
    return Effect(effect.method, path, fill(effect.body, lambda placeholder: value(*placeholder[KEY])))


class Outbox:
    """The effects of one handler run, in the order the handler asked for them."""

    def __init__(self) -> None:
        self.effects: list[Effect] = []

    def add(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        self.effects.append(Effect(method, path, body))

    def clear(self) -> None:
        """Forget what was collected: the handler failed, so none of it may go out."""
        self.effects.clear()

    def __len__(self) -> int:
        return len(self.effects)


class OutboxActions(Actions):
    """:class:`Actions` of one handler run, which put effects in ``outbox`` (when there is one)
    instead of calling at once, and return handles to their answers either way.

    A handle from another run (or from before the run failed and rolled back) is refused at once.
    """

    def __init__(self, client: GraphClient, outbox: Outbox | None = None, run: Run | None = None) -> None:
        super().__init__(client)
        self.outbox = outbox
        self.run = run or Run()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, on: Id | None = None) -> Answer:
        """Queue the call in the outbox, or make it now when there is no outbox."""
        effect = Effect(method, join(self._use(on), path), fill(body, self._use))
        index = self.run.next()
        return Answer(self.run, index, self._deliver(effect), queued=self.outbox is not None)

    def _deliver(self, effect: Effect) -> dict[str, Any]:
        """Queue ``effect`` in the outbox (no answer yet), or make it now when there is none."""
        if self.outbox is not None:
            self.outbox.add(effect.method, effect.path, effect.body)
            return {}
        return self.client.request(effect.method, effect.path, json=effect.body)

    def _use(self, value: Any) -> Any:
        """A handle of this run as the call takes it: its value when known, else its placeholder."""
        if not isinstance(value, Ref):
            return value
        if value.run is not self.run:
            raise ValueError(f"{value!r} comes from another handler run: a handle is good only in the run "
                             "that made it")
        return value.require() if value.known else value.placeholder

    def _result(self, answer: dict[str, Any], field: str) -> Ref:
        """A handle to ``field`` of the call's answer, the same type whether it was queued or made (every
        call made through :meth:`call` here answers with an :class:`Answer`)."""
        if not isinstance(answer, Answer):
            raise TypeError(f"expected the Answer of an outbox call, got {type(answer).__name__}")
        return answer.ref(field)
