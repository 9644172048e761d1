"""The one function every executor calls: type an item, skip repeats and echoes, route it.

Thread pool, inline test kit or (later) a durable worker: each hands ``Dispatcher.dispatch`` a
bot name and a queued :class:`~bots.envelope.Item`, nothing else.
"""

from __future__ import annotations

import logging

from . import notices
from .context import Context
from .dedupe import DedupeStore
from .envelope import Item, load_event
from .errors import WebhookError
from .router import Outcome, Status, route
from .runtime import BotRuntime

logger = logging.getLogger("bots")


class Dispatcher:
    """Runs queued items for the bots one app serves."""

    def __init__(self, runtimes: dict[str, BotRuntime], dedupe: DedupeStore) -> None:
        self.runtimes = runtimes
        self.dedupe = dedupe

    def dispatch(self, bot_name: str, item: Item) -> Outcome:
        """Handle one item for ``bot_name`` and say what became of it; never raises for a bad item."""
        runtime = self.runtimes[bot_name]
        runtime.learn(item.object, item.entry_id)
        try:
            event = load_event(item)
        except WebhookError as error:
            logger.warning("%s: skipped an item the schema refuses: %s", bot_name, error.message)
            return Outcome(Status.INVALID, error=error)
        if runtime.bot.ignore_self and runtime.is_own(event):
            return Outcome(Status.IGNORED)
        key = event.dedupe_key
        if not self.dedupe.first_time(f"{bot_name}:{key}"):
            logger.info(notices.DUPLICATE_SKIPPED, bot_name, event.describe(), key)
            return Outcome(Status.DUPLICATE)
        ctx = Context(runtime.bot, event, runtime.client)
        return route(runtime.bot, event, ctx)
