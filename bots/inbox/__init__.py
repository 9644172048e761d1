"""Where accepted events wait for their handlers, and what the handlers send waits for Graph.

Three implementations behind one protocol:

- :class:`SQLiteInbox` (default): durable, one machine, worker threads in the web process;
- ``CeleryInbox`` (``REDIS_URL`` set): durable, Celery workers on any number of machines;
- :class:`MemoryInbox`: in process memory, for the test kit and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..envelope import Item
from .journal import Journal
from .memory import MemoryInbox
from .sqlite import SQLiteInbox
from .sqlite_journal import SQLiteJournal
from .status import InboxStatus


class Inbox(Protocol):
    durable: bool

    def accept(self, bot_name: str, items: Sequence[Item], body: bytes) -> bool:
        """Take every item of a verified delivery (``body``, as it came) or none, before the webhook answers 200;
        False when there is no room."""

    def start(self) -> None:
        """Start taking work (threads in this process, where the inbox has any)."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking work; let running work finish within ``timeout`` seconds."""

    @property
    def pending(self) -> int:
        """Events and messages waiting."""

    def status(self) -> InboxStatus:
        """Backlog, how long due work has waited and this process's threads, for health checks and metrics."""

    def dead_letters(self) -> list[dict[str, Any]]:
        """Events and messages parked after their last attempt, oldest first."""

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (or, with None, all) back in line; returns how many."""


__all__ = ["Inbox", "InboxStatus", "Journal", "MemoryInbox", "SQLiteInbox", "SQLiteJournal"]
