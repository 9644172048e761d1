"""The embedded durable inbox: the SQLite journal, worked by threads of the web process or of its handler process.

``accept`` appends a delivery's items in one insert before the webhook answers 200. Handler
threads take due events in batches and hand them to the :class:`~bots.inbox.runner.Runner`;
sender threads take outbox messages and deliver them through it. A batch is as large as the
backlog allows and small enough to finish in a few tens of milliseconds, so a quiet inbox answers
each event at once and a busy one pays one transaction for many events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from .. import notices
from ..dispatch import Dispatcher
from ..envelope import Item
from ..errors import WebhookError
from ..runtime import BotRuntime
from ..workers import GATHER, IO_LOOK_AHEAD, BatchSize, Workers
from .heartbeat import Heartbeat
from .journal import Taken, TakenMessage, owner_name
from .process import Elsewhere, HandlerProcess, Remote, claim
from .retries import RetryPolicy
from .runner import Runner
from .sqlite_journal import SQLiteJournal
from .status import InboxStatus, waited

logger = logging.getLogger("bots")

PURGE_EVERY = 600.0  # seconds between sweeps of expired dedupe digests


class SQLiteInbox:
    """Accepts deliveries into the SQLite journal and runs them on this process's threads."""

    durable = True

    def __init__(self, journal: SQLiteJournal, dispatcher: Dispatcher, runtimes: Mapping[str, BotRuntime], *,
                 handler_threads: int = 8, sender_threads: int = 4, max_attempts: int = 5,
                 send_attempts: int = 5, retry_base: float = 1.0, poll: float = 0.5, strict: bool = False) -> None:
        self.journal = journal
        self.owner = owner_name()
        self.heartbeat = Heartbeat(journal.lease_seconds / 3)
        self.runner = Runner(journal, dispatcher, runtimes, RetryPolicy(max_attempts, send_attempts, retry_base),
                             strict=strict, on_effects=self._effects_queued)
        self._next_purge = 0.0
        self._parse_for_here = True  # keep each delivery's items for this process's handler threads
        self._events, self._messages = BatchSize(), BatchSize()
        self.handlers: Workers | Remote = Workers("handler", handler_threads, self._take_events, self._handle, poll)
        self.senders: Workers | Remote = Workers("sender", sender_threads, self._take_messages, self._deliver, poll,
                                                 look_ahead=IO_LOOK_AHEAD)

    def accept(self, bot_name: str, items: Sequence[Item], body: bytes = b"") -> bool:
        """Append the delivery durably (before the webhook answers 200) and wake a handler thread."""
        try:
            self.journal.append(bot_name, body, items if self._parse_for_here else None)
        except OSError as error:
            logger.error("%s: %s (%s)", bot_name, notices.INBOX_UNAVAILABLE, error)
            raise WebhookError(503, notices.INBOX_UNAVAILABLE) from None
        self.handlers.wake(1)
        return True

    def hand_off(self, on_lost: Callable[[], None], before_exit: Callable[[], None]) -> int:
        """Leave the handler and sender threads to the machine's handler process (:mod:`bots.inbox.process`):
        fork it now if no process holds the handler lock, else use the one another worker forked; from then on
        this process only accepts, and wakes it through its FIFO. ``on_lost`` is called when that process is
        gone, ``before_exit`` in the child once its threads have stopped. Returns the child's pid (0: none forked)."""
        def work(stopping: threading.Event) -> None:
            self.journal.store.forget_connections()
            self.owner = owner_name()  # leases name this process, so they are freed if it dies
            self.start()
            stopping.wait()
            self.shutdown()
            before_exit()

        folder = self.journal.arrivals.folder
        for pool in (self.handlers, self.senders):
            if isinstance(pool, Workers):
                pool.settle = GATHER  # the child's pools: a worker holds back wake-ups that come close together
        process: HandlerProcess | Elsewhere
        lock, pid = claim(folder), 0
        if lock is not None:
            process = HandlerProcess(folder, work, {b"h": self.handlers.wake, b"s": self.senders.wake}, on_lost)
            pid = process.fork(lock)
        else:
            process = Elsewhere(folder, on_lost)
        self.handlers, self.senders = Remote(self.handlers, process, b"h"), Remote(self.senders, process, b"s")
        self._parse_for_here = False
        return pid

    def start(self) -> None:
        """Release leases of processes that died, then start the threads."""
        released = self.journal.release_orphans()
        if released:
            logger.info("took back %d leases held by processes that are gone", released)
        self.handlers.start()
        self.senders.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.handlers.stop(timeout / 2)
        self.senders.stop(timeout / 2)

    @property
    def pending(self) -> int:
        counts = self.journal.counts()
        return counts["events"] + counts["messages"]

    def status(self) -> InboxStatus:
        """The backlog, how long due work has waited, and this process's handler and sender threads."""
        return InboxStatus(self.pending, waited(self.journal.waiting_since(), self.journal.clock()),
                           {"handler": self.handlers.running(), "sender": self.senders.running()})

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.journal.dead_letters()

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (or all) back in line; returns how many."""
        replayed = self.journal.replay(letter_id)
        self.handlers.wake(replayed)
        self.senders.wake(replayed)
        return replayed

    def run_due(self) -> int:
        """Handle every event and deliver every outbox message due now, in the calling thread, until none is
        left: the engine without its threads, for the test kit (inline, deterministic). Returns how many
        events and messages were worked."""
        worked = 0
        while True:
            jobs = self._take_events()
            if jobs:
                self._handle(jobs)
            elif messages := self._take_messages():
                self._deliver(messages)
            else:
                return worked
            worked += len(jobs) or len(messages)

    def _take_events(self) -> list[Taken]:
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY
            self.journal.purge_dedupe()
        return self.journal.take(self._owner(), self._events())

    def _take_messages(self) -> list[TakenMessage]:
        return self.journal.take_messages(self._owner(), self._messages())

    def _owner(self) -> str:
        """This thread's lease owner: the process's name (so its leases are freed when it dies) and the thread's,
        so a thread whose lease ran out never commits over another thread of its process that took the job."""
        return f"{self.owner}:{threading.current_thread().name}"

    def _handle(self, jobs: Sequence[Taken]) -> None:
        started = time.perf_counter()
        with self.heartbeat.keep(partial(self.journal.renew, jobs)):
            self.runner.handle(jobs)
        self._events.ran(len(jobs), time.perf_counter() - started)

    def _deliver(self, messages: Sequence[TakenMessage]) -> None:
        started = time.perf_counter()
        with self.heartbeat.keep(partial(self.journal.renew, messages)):
            sent = [message for message in messages if self.runner.deliver(message)]
            if sent:
                self.journal.sent(sent)
        self._messages.ran(len(messages), time.perf_counter() - started)

    def _effects_queued(self, count: int) -> None:
        self.senders.wake(count)
