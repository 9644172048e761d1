"""Graph API call statistics per bot, as Workplace's Admin Panel shows them.

"Last API request": the last day a call was made, and the number of calls on each of the
last seven days (UTC). Every HTTP request to the Graph API counts, retries included. Kept in the
embedded store, or in Redis when the deployment is scaled out.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypedDict

import redis

from .store import Store

logger = logging.getLogger("bots")

FLUSH_EVERY = 1.0  # seconds between writes of the calls counted in memory


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

    def flush(self) -> None:
        """Write down whatever is counted but not yet stored (the process is stopping)."""


def utc_today() -> date:
    return datetime.now(UTC).date()


class CallStats:
    """Counts calls per bot and day in the embedded store.

    Counts gather in memory and are written in one transaction at most every ``flush_every`` seconds (and
    before figures are read, and when the deployment stops), so a Graph call costs no write transaction of
    its own: under load the senders would otherwise queue on the write lock once per reply. A process
    killed outright loses at most its last second's counts; another process sees them that much later.
    """

    def __init__(self, store: Store, today: Callable[[], date] = utc_today, flush_every: float = FLUSH_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.today = today
        self.flush_every = flush_every
        self.clock = clock
        self._pending: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._flushed_at = clock()

    def record(self, bot: str) -> None:
        """Count one Graph API request by ``bot`` today; written with the others within ``flush_every`` s."""
        with self._lock:
            self._pending[(bot, self.today().isoformat())] += 1
            due = self.clock() - self._flushed_at >= self.flush_every
        if due:
            self.flush()

    def flush(self) -> None:
        """Add the calls counted here to the store in one transaction; kept for the next flush if it fails."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._flushed_at = self.clock()
        if not pending:
            return
        try:
            with self.store.transaction() as db:
                db.executemany("INSERT INTO call_stats (bot, day, calls) VALUES (?, ?, ?) ON CONFLICT (bot, day) "
                               "DO UPDATE SET calls = calls + excluded.calls",
                               [(bot, day, calls) for (bot, day), calls in pending.items()])
        except sqlite3.Error as error:
            with self._lock:
                self._pending.update(pending)
            logger.warning("could not write the Graph call counts (%s); they are kept for the next try", error)

    def summary(self, bot: str) -> Summary:
        """``{"bot", "last_request_day", "last_7_days": [{"day", "calls"}, ...]}``, oldest day first; this
        process's calls are written first, so they are all in."""
        self.flush()
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

    def flush(self) -> None:
        """Nothing to do: every call is counted in Redis as it is made."""

    def _day(self, bot: str, day: str) -> str:
        return f"{self.prefix}calls:{bot}:{day}"
