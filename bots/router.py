"""Run the handler an event matches, inside the bot's middleware, with its error handlers.

A handler's exception is caught here and given to the bot's error handlers; it never reaches
the webhook, which has answered 200 already.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import notices
from .bot import Bot
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


def route(bot: Bot, event: Event, ctx: Any) -> Outcome:
    """Find the first handler for ``event``, run it inside the middleware, and report what happened."""
    found = bot.match(event)
    if found is None:
        logger.warning(notices.UNMATCHED_EVENT, bot.name, event.describe(), bot.name, notices.decorator_hint(event))
        return Outcome(Status.UNMATCHED)
    listener, matched = found
    ctx.match = matched if matched is not True else None
    try:
        chain(bot.middlewares, listener.handler)(event, ctx)
    except Exception as error:
        _on_error(bot, listener.name, error, event, ctx)
        return Outcome(Status.FAILED, listener.name, error)
    return Outcome(Status.HANDLED, listener.name)


def chain(middlewares: list[Callable], handler: Callable[[Event, Any], Any]) -> Callable[[Event, Any], Any]:
    """``handler`` wrapped in ``middlewares``, the first registered outermost."""
    call = handler
    for middleware in reversed(middlewares):
        call = _wrap(middleware, call)
    return call


def _wrap(middleware: Callable, call_next: Callable[[Event, Any], Any]) -> Callable[[Event, Any], Any]:
    def step(event: Event, ctx: Any) -> Any:
        return middleware(event, ctx, call_next)
    return step


def _on_error(bot: Bot, handler: str, error: Exception, event: Event, ctx: Any) -> None:
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
