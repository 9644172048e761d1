"""The one function every inbox calls: type an item, skip echoes and repeats, route it.

In-memory executor, durable SQLite inbox, Celery worker or the inline test kit: each hands
:meth:`Dispatcher.run` a bot name, a queued :class:`~bots.envelope.Item`, the conversation's
state and (for the durable inboxes) an outbox that collects the handler's effects.
"""

from __future__ import annotations

import logging
import time

from . import metrics, notices
from .context import Context
from .dedupe import DedupeStore
from .envelope import Item, load_event
from .errors import WebhookError
from .outbox import Outbox
from .router import Outcome, Status, route
from .runtime import BotRuntime
from .state import MemoryStates, State, StateStore

logger = logging.getLogger("bots")


class Dispatcher:
    """Runs queued items for the bots one app serves."""

    def __init__(self, runtimes: dict[str, BotRuntime], dedupe: DedupeStore,
                 states: StateStore | None = None) -> None:
        self.runtimes = runtimes
        self.dedupe = dedupe
        self.states = states or MemoryStates()

    def dispatch(self, bot_name: str, item: Item) -> Outcome:
        """Handle one item with effects made at once, deduplicating in memory: the non-durable path (counted
        here; the durable inboxes' runner counts what becomes of the events it runs)."""
        if not self.dedupe.first_time(f"{bot_name}:{item.dedupe_key}"):
            logger.info(notices.DUPLICATE_SKIPPED, bot_name, item.path, item.dedupe_key)
            metrics.event(bot_name, metrics.kind_of(item), Status.DUPLICATE.value)
            return Outcome(Status.DUPLICATE)
        conversation = item.conversation_key
        state = self.states.load(bot_name, conversation)
        kind = metrics.kind_of(item)
        outcome = self.run(bot_name, item, state=state, kind=kind)
        if outcome.status is Status.HANDLED and state.changed:
            self.states.save(bot_name, conversation, state)
        metrics.event(bot_name, kind, outcome.status.value)
        return outcome

    def run(self, bot_name: str, item: Item, *, state: State | None = None, outbox: Outbox | None = None,
            attempt: int = 1, last_attempt: bool = True, kind: str | None = None) -> Outcome:
        """Type ``item`` and route it to ``bot_name``'s handler; never raises for a bad item or handler.
        ``attempt`` counts the runs of this event, and ``last_attempt`` says a failure now is not retried;
        ``kind`` is the item's :func:`metrics.kind_of`, when the caller has it already."""
        runtime = self.runtimes[bot_name]
        runtime.learn(item.object, item.entry_id)
        try:
            event = load_event(item)
        except WebhookError as error:
            logger.warning("%s: skipped an item the schema refuses: %s", bot_name, error.message)
            return Outcome(Status.INVALID, error=error)
        if runtime.bot.ignore_self and runtime.is_own(event):
            return Outcome(Status.IGNORED)
        ctx = Context(runtime.bot, event, runtime.client, outbox=outbox, state=state, attempt=attempt,
                      last_attempt=last_attempt)
        started = time.perf_counter()
        outcome = route(runtime.bot, event, ctx)
        seconds = time.perf_counter() - started
        kind = kind or metrics.kind_of(item)
        if outcome.handler is not None:
            metrics.handler_ran(bot_name, kind, seconds)
        if logger.isEnabledFor(logging.INFO):
            _log_run(bot_name, kind, item, outcome, seconds)
        return outcome


def _log_run(bot_name: str, kind: str, item: Item, outcome: Outcome, seconds: float) -> None:
    """One line per handler run: bot, event kind, delivery id, outcome and duration (fields in JSON logs); the
    delivery is named by its id, never its content."""
    delivery, ms = item.dedupe_key, round(seconds * 1000, 3)
    logger.info("%s: %s %s %s in %.1f ms", bot_name, kind, delivery, outcome.status.value, ms,
                extra={"bot": bot_name, "event": kind, "delivery": delivery, "outcome": outcome.status.value,
                       "duration_ms": ms})
