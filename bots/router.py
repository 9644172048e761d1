"""Run the handler an event matches, inside the bot's middleware, with its error handlers.

A handler's exception is caught here and given to the bot's error handlers; it never reaches
the webhook, which has answered 200 already.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from typing import cast

from . import notices
from .bot import Bot, Middleware, Next
from .context import Context
from .events import Event

logger = logging.getLogger("bots")


class Status(enum.Enum):
    """What became of one event."""

    HANDLED = "handled"
    UNMATCHED = "unmatched"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    handler: str | None = None
    error: BaseException | None = None


def route(bot: Bot, event: Event, ctx: Context) -> Outcome:
    """Find the first handler for ``event``, run it inside the middleware, and report what happened."""
    found = bot.match(event)
    if found is None:
        logger.warning(notices.UNMATCHED_EVENT, bot.name, event.describe(), bot.name, notices.decorator_hint(event))
        return Outcome(Status.UNMATCHED)
    listener, matched = found
    # What a matcher hands on is a regex match (text(), payload(re.compile(...))) or True; a predicate of
    # the developer's own may return something else truthy, which reaches ctx.match as it always has.
    ctx.match = cast("re.Match[str] | None", matched if matched is not True else None)
    try:
        chain(bot.middlewares, listener.handler)(event, ctx)
    except Exception as error:
        _on_error(bot, listener.name, error, event, ctx)
        return Outcome(Status.FAILED, listener.name, error)
    return Outcome(Status.HANDLED, listener.name)


def chain(middlewares: list[Middleware], handler: Next) -> Next:
    """``handler`` wrapped in ``middlewares``, the first registered outermost."""
    call = handler
    for middleware in reversed(middlewares):
        call = _wrap(middleware, call)
    return call


def _wrap(middleware: Middleware, call_next: Next) -> Next:
    def step(event: Event, ctx: Context) -> object:
        return middleware(event, ctx, call_next)
    return step


def _on_error(bot: Bot, handler: str, error: Exception, event: Event, ctx: Context) -> None:
    rollback = getattr(ctx, "rollback", None)
    if rollback is not None:
        rollback()
    if not bot.error_handlers:
        logger.error(notices.HANDLER_FAILED, bot.name, handler, event.describe(), type(error).__name__,
                     exc_info=error)
        return
    for error_handler in bot.error_handlers:
        try:
            error_handler(error, event, ctx)
        except Exception:
            logger.exception(notices.ERROR_HANDLER_FAILED, bot.name, getattr(error_handler, "__name__", "?"),
                             event.describe())
