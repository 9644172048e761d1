"""Graph API call statistics per bot, as Workplace's Admin Panel shows them.

"Last API request": the last day a call was made, and the number of calls on each of the
last seven days (UTC). Every HTTP request to the Graph API counts, retries included. Kept in the
embedded store, or in Redis when the deployment is scaled out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypedDict

import redis

from .store import Store

logger = logging.getLogger("bots")


class DayCalls(TypedDict):
    day: str
    calls: int


class Summary(TypedDict):
    """One bot's figures: the last day it called Graph (None: never) and its calls on each of the last 7 days."""

    bot: str
    last_request_day: str | None
    last_7_days: list[DayCalls]


class Stats(Protocol):
    """Where Graph API calls are counted: :class:`CallStats` (embedded store) or :class:`RedisCallStats`."""

    def record(self, bot: str) -> None:
        """Count one Graph API request by ``bot`` today; never raises into the call."""

    def summary(self, bot: str) -> Summary:
        """``bot``'s figures, oldest day first."""


def utc_today() -> date:
    return datetime.now(UTC).date()


class CallStats:
    """Counts calls per bot and day in the embedded store."""

    def __init__(self, store: Store, today: Callable[[], date] = utc_today) -> None:
        self.store = store
        self.today = today

    def record(self, bot: str) -> None:
        """Count one Graph API request by ``bot`` today."""
        with self.store.transaction() as db:
            db.execute("INSERT INTO call_stats (bot, day, calls) VALUES (?, ?, 1) "
                       "ON CONFLICT (bot, day) DO UPDATE SET calls = calls + 1", (bot, self.today().isoformat()))

    def summary(self, bot: str) -> Summary:
        """``{"bot", "last_request_day", "last_7_days": [{"day", "calls"}, ...]}``, oldest day first."""
        today = self.today()
        days = [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
        db = self.store.connection()
        counts = dict(db.execute("SELECT day, calls FROM call_stats WHERE bot = ? AND day >= ?", (bot, days[0])))
        (last,) = db.execute("SELECT max(day) FROM call_stats WHERE bot = ?", (bot,)).fetchone()
        return {"bot": bot, "last_request_day": last,
                "last_7_days": [{"day": day, "calls": counts.get(day, 0)} for day in days]}


class RedisCallStats:
    """The same counts in Redis (``REDIS_URL``), so every web process and worker on every machine adds to one
    figure: a counter per bot and day kept eight days, and the last day a call was made."""

    KEEP_SECONDS = 8 * 86400

    def __init__(self, client: redis.Redis, prefix: str = "bots:", today: Callable[[], date] = utc_today) -> None:
        self.redis = client
        self.prefix = prefix
        self.today = today

    def record(self, bot: str) -> None:
        """Count one Graph API request by ``bot`` today; a Redis failure is logged, never raised into the call."""
        day = self.today().isoformat()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(self._day(bot, day))
            pipe.expire(self._day(bot, day), self.KEEP_SECONDS)
            pipe.set(f"{self.prefix}calls:last:{bot}", day)
            pipe.execute()
        except Exception as error:
            logger.warning("%s: could not count a Graph call in Redis (%s)", bot, type(error).__name__)

    def summary(self, bot: str) -> Summary:
        """``{"bot", "last_request_day", "last_7_days": [{"day", "calls"}, ...]}``, oldest day first."""
        today = self.today()
        days = [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
        *counts, last = self.redis.mget([self._day(bot, day) for day in days] + [f"{self.prefix}calls:last:{bot}"])
        calls: list[DayCalls] = [{"day": day, "calls": int(count or 0)}
                                 for day, count in zip(days, counts, strict=True)]
        return {"bot": bot, "last_request_day": last.decode() if isinstance(last, bytes) else last,
                "last_7_days": calls}

    def _day(self, bot: str, day: str) -> str:
        return f"{self.prefix}calls:{bot}:{day}"
