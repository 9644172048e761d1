"""The non-durable inbox: items go to an executor in process memory (the test kit, benchmarks, ``INBOX=memory``).

Effects are made while the handler runs and dedupe keys live in memory, so a crash loses what
was queued; use it where that is acceptable.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from ..dispatch import Dispatcher
from ..envelope import Item
from ..executor import Executor, ThreadPoolExecutor
from .status import InboxStatus


class MemoryInbox:
    """Hands each item to ``executor`` as a job keyed by its conversation."""

    durable = False

    def __init__(self, executor: Executor, dispatcher: Dispatcher) -> None:
        self.executor = executor
        self.dispatcher = dispatcher

    def accept(self, bot_name: str, items: Sequence[Item], body: bytes = b"") -> bool:
        dispatch = self.dispatcher.dispatch
        return self.executor.submit([(f"{bot_name}:{item.conversation_key}", partial(dispatch, bot_name, item))
                                     for item in items])

    def start(self) -> None:
        return None

    def shutdown(self, timeout: float = 10.0) -> None:
        self.executor.shutdown(timeout)

    @property
    def pending(self) -> int:
        return getattr(self.executor, "pending", 0)

    def status(self) -> InboxStatus:
        """The executor's backlog and, where it can say (the thread pool), how long its oldest running job has
        waited and how many of its threads are alive."""
        if not isinstance(self.executor, ThreadPoolExecutor):
            return InboxStatus(self.pending)
        return InboxStatus(self.pending, self.executor.waited(), {"handler": self.executor.running()})

    def dead_letters(self) -> list[dict[str, Any]]:
        return []

    def replay(self, letter_id: str | None = None) -> int:
        if letter_id is not None:
            raise LookupError(f"no dead letter {letter_id!r}: the in-memory inbox keeps none")
        return 0
