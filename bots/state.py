"""Conversation state: ``ctx.state``, a JSON dict per bot and conversation that outlives a handler.

It is loaded before the handler runs and saved only when the handler succeeds, in the same
transaction that marks the event done, so a failed handler leaves the state as it found it.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

EMPTY = "{}"


class State(dict[str, Any]):
    """A plain dict that remembers how it started, so an unchanged state is not written back."""

    def __init__(self, data: dict[str, Any] | None = None, *, original: str | None = None) -> None:
        super().__init__(data or {})
        self._original = original if original is not None else dumps(self) if self else EMPTY

    @classmethod
    def loads(cls, raw: str | None) -> State:
        """The state as stored by :func:`dumps`; its text is kept as the original, so nothing is encoded again."""
        return cls(json.loads(raw), original=raw) if raw else cls()

    @property
    def changed(self) -> bool:
        """True when the state differs from how it started (an empty state that stayed empty costs nothing)."""
        if not self and self._original == EMPTY:
            return False
        return dumps(self) != self._original

    def restore(self) -> None:
        """Back to the state as loaded: the handler failed."""
        self.clear()
        self.update(json.loads(self._original))


def dumps(state: dict[str, Any]) -> str:
    """The state as stored; a ``TypeError`` names the value JSON cannot hold."""
    try:
        return json.dumps(state, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise TypeError(f"ctx.state must hold JSON values only: {error}") from None


class StateStore(Protocol):
    def load(self, bot: str, conversation: str) -> State: ...

    def save(self, bot: str, conversation: str, state: State) -> None: ...


class MemoryStates:
    """States in process memory, for the test kit and the in-memory executor."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def load(self, bot: str, conversation: str) -> State:
        return State.loads(self._states.get((bot, conversation)))

    def save(self, bot: str, conversation: str, state: State) -> None:
        raw = dumps(state)
        with self._lock:
            self._states[(bot, conversation)] = raw
