"""Answers remembered by ``X-Idempotency-Key``: a repeated call gets the first answer and changes nothing.

Graph ignores the header; the framework's outbox sends it on every try of a message, so against
the emulator a message that was sent, answered and then sent again (the sender crashed before it
could record the answer) appears once. Kept in memory, per integration, for the last 10,000 keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

HEADER = "X-Idempotency-Key"


class Answers:
    """The first answer to each (integration, key), bounded, oldest forgotten first."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.repeats = 0
        self._answers: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, integration: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            answer = self._answers.get((integration, key))
            if answer is not None:
                self.repeats += 1
            return answer

    def keep(self, integration: str, key: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self._answers[(integration, key)] = answer
            while len(self._answers) > self.limit:
                self._answers.popitem(last=False)
