"""The embedded durable inbox: SQLite on this machine, worker threads in the web process.

``accept`` appends a delivery's items in one transaction before the webhook answers 200.
Handler threads run each event with an outbox and the conversation's state and commit the
result; sender threads deliver the outbox through the Graph client. Failures are retried with
backoff and then parked as dead letters, which ``replay`` puts back in line.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from .. import notices
from ..dispatch import Dispatcher
from ..envelope import Item
from ..errors import WebhookError
from ..graph import IDEMPOTENCY_HEADER
from ..outbox import Outbox
from ..router import Status
from ..runtime import BotRuntime
from .heartbeat import Heartbeat
from .journal import Journal, Taken, TakenMessage, owner_name
from .retries import Failure, RetryPolicy
from .workers import Workers

logger = logging.getLogger("bots")

__all__ = ["IDEMPOTENCY_HEADER", "SQLiteInbox"]

PURGE_EVERY = 600.0  # seconds between sweeps of expired dedupe keys


class SQLiteInbox:
    """Accepts deliveries into the journal and runs them on this process's threads."""

    durable = True

    def __init__(self, journal: Journal, dispatcher: Dispatcher, runtimes: Mapping[str, BotRuntime], *,
                 handler_threads: int = 8, sender_threads: int = 4, max_attempts: int = 5,
                 send_attempts: int = 5, retry_base: float = 1.0, poll: float = 0.5) -> None:
        self.journal = journal
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self.retries = RetryPolicy(max_attempts, send_attempts, retry_base)
        self.owner = owner_name()
        self._next_purge = 0.0
        self.heartbeat = Heartbeat(journal.lease_seconds / 3)
        self.handlers = Workers("handler", handler_threads, self._take_event, self._leased("event", self.handle), poll)
        self.senders = Workers("sender", sender_threads, self._take_message, self._leased("message", self.deliver),
                               poll)

    def accept(self, bot_name: str, items: Sequence[Item]) -> bool:
        """Append ``items`` durably (before the webhook answers 200) and wake a handler thread."""
        try:
            self.journal.append(bot_name, items)
        except sqlite3.Error as error:
            logger.error("%s: %s (%s)", bot_name, notices.INBOX_UNAVAILABLE, error)
            raise WebhookError(503, notices.INBOX_UNAVAILABLE) from None
        self.handlers.wake(len(items))
        return True

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

    def dead_letters(self) -> list[dict]:
        return self.journal.dead_letters()

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (or all) back in line; returns how many."""
        replayed = self.journal.replay(letter_id)
        self.handlers.wake(replayed)
        self.senders.wake(replayed)
        return replayed

    def handle(self, taken: Taken) -> None:
        """Run one event; commit its effects and state, or schedule a retry, or park it."""
        if taken.bot not in self.runtimes:
            self.journal.bury("event", taken.id, self.owner, f"no bot named {taken.bot!r} is served here")
            return
        state = self.journal.load_state(taken.bot, taken.conversation)
        outbox = Outbox()
        outcome = self.dispatcher.run(taken.bot, taken.item, state=state, outbox=outbox)
        if outcome.status is not Status.FAILED:
            try:
                finished = self.journal.finish(taken, outbox.effects, state)
            except TypeError as error:
                self._failed(taken, error)
                return
            if not finished:
                logger.warning("%s: event %d was taken over by another worker; this run's effects are dropped",
                               taken.bot, taken.id)
            elif outbox.effects:
                self.senders.wake(len(outbox.effects))
            return
        self._failed(taken, outcome.error)

    def deliver(self, message: TakenMessage) -> None:
        """Send one outbox message; on failure retry later or park it with Graph's reason."""
        runtime = self.runtimes.get(message.bot)
        if runtime is None:
            self.journal.bury("message", message.id, self.owner, f"no bot named {message.bot!r} is served here")
            return
        failure = self.retries.send(runtime, message.effect, message.key, message.attempts)
        if failure is None:
            self.journal.sent(message)
        else:
            self._settle("message", message, message.effect.describe(), failure)

    def _leased(self, kind: str, run: Callable[[Any], None]) -> Callable[[Any], None]:
        """``run`` with its event's or message's lease renewed while it runs."""
        def run_leased(job: Taken | TakenMessage) -> None:
            with self.heartbeat.keep(partial(self.journal.renew, kind, job.id, job.owner)):
                run(job)
        return run_leased

    def _failed(self, taken: Taken, error: BaseException | None) -> None:
        self._settle("event", taken, f"event {taken.id}", self.retries.handler_failed(taken.attempts, error))

    def _settle(self, kind: str, job: Taken | TakenMessage, what: str, failure: Failure) -> None:
        """Give failed work back to be tried again later, or park it as a dead letter."""
        if failure.retry_in is not None:
            self.journal.retry(kind, job.id, self.owner, failure.reason, failure.retry_in)
            return
        logger.error("%s: %s parked as a dead letter after %d attempts: %s", job.bot, what, job.attempts,
                     failure.reason)
        self.journal.bury(kind, job.id, self.owner, failure.reason)

    def _take_event(self) -> Taken | None:
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY
            self.journal.purge_dedupe()
        return self.journal.take(self.owner)

    def _take_message(self) -> TakenMessage | None:
        return self.journal.take_message(self.owner)
