"""What the inbox engine needs of a store: the journal protocol, and the records that cross it.

A journal keeps accepted events until a handler has run for them, the outbox messages their
handlers asked for, conversation state, dedupe keys and dead letters. Two journals implement it:
SQLite on one machine (:mod:`bots.inbox.sqlite_journal`) and Redis for Celery workers
(:mod:`bots.inbox.redis_journal`). The algorithm that runs events and delivers messages over a
journal lives once, in :mod:`bots.inbox.runner`.

Jobs are held under a lease: every write that ends a job checks that its holder still holds it,
so a worker whose lease ran out cannot commit over the one that took the job next.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..envelope import Item
from ..outbox import Effect
from ..state import State

#: Characters of an error kept with a retry or a dead letter.
MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Taken:
    """An event a worker holds under a lease: its stored item, not yet read (reading it may fail)."""

    id: int | str
    bot: str
    conversation: str
    body: str
    attempts: int
    owner: str
    lane: str = ""
    #: The item already read, when the journal has it at hand (it was just accepted); else read from ``body``.
    item: Item | None = None


@dataclass(frozen=True, slots=True)
class TakenMessage:
    """One event's outbox entry a sender holds: its effects in order, how many went out, their answers."""

    id: int | str
    key: str
    bot: str
    conversation: str
    body: str
    attempts: int
    owner: str
    done: int = 0
    results: tuple[dict[str, Any] | None, ...] = ()
    lane: str = ""


@dataclass(frozen=True, slots=True)
class Finished:
    """What finishing an event writes at once: its effects into the outbox and its state (None: unchanged)."""

    job: Taken
    effects: Sequence[Effect] = ()
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a sender got through a message's effects, and what Graph answered each."""

    done: int
    results: list[dict[str, Any] | None] = field(default_factory=list)


class Journal(Protocol):
    """The store operations the runner calls; each is atomic."""

    lease_seconds: float

    def load_states(self, jobs: Sequence[Taken]) -> list[State]:
        """The state of each job's conversation, as last saved."""

    def finish(self, finished: Sequence[Finished]) -> list[bool]:
        """End each event at once with its effects and state; False for one whose lease was lost."""

    def retry(self, job: Taken | TakenMessage, error: str, delay: float, *, in_line: bool) -> None:
        """Give the job back, due again in ``delay`` seconds; ``in_line`` False lets its conversation go on."""

    def bury(self, job: Taken | TakenMessage, error: str, effects: Sequence[Effect] = ()) -> None:
        """Park the job among the dead letters, with why; an event's ``effects`` (what its error handlers sent on
        the last attempt) are queued as one outbox message in the same step."""

    def progress(self, message: TakenMessage, progress: Progress) -> bool:
        """Record that the first ``progress.done`` effects of ``message`` reached Graph; False if its lease was lost."""

    def sent(self, messages: Sequence[TakenMessage]) -> None:
        """Every effect of these messages reached Graph: forget them."""

    def renew(self, jobs: Sequence[Taken | TakenMessage]) -> bool:
        """Extend the leases of ``jobs`` by a lease period; False if any was lost."""


def storable(text: str) -> str:
    """``text`` as a store can hold it: a lone surrogate (``"m2\\ud800"``) is written as its escape, so one odd
    id in a delivery cannot make a write fail; every other string is returned unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def reason(error: BaseException | str | None) -> str:
    """A short, storable line saying why a job failed."""
    if error is None:
        return "failed"
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return storable(text[:MAX_REASON])


def read_item(body: str) -> Item:
    """The item a journal stored; raises ValueError (or a subclass) when the stored text is not one."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the stored event is not a JSON object")
    return Item.from_dict(data)


def owner_name() -> str:
    """Who holds a lease: host, process id and a random part, so a dead process's leases can be found."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def digest(bot: str, key: str) -> bytes:
    """The 16 bytes kept for a dedupe key: enough to tell 10^9 keys apart, a fraction of the key's own size."""
    return hashlib.blake2b(f"{bot}:{key}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


def conversation_of(item: Item) -> str:
    """The item's conversation key; never raises, so one odd item cannot stop a batch or fail a request."""
    try:
        return item.conversation_key
    except Exception:
        return f"{item.object}:{item.entry_id}"


def dedupe_key_of(item: Item) -> str:
    """The item's dedupe key; never raises, so one odd item cannot stop a batch or fail a request."""
    try:
        return item.dedupe_key
    except Exception:
        return "repr:" + hashlib.sha256(repr(item).encode("utf-8", "surrogatepass")).hexdigest()
