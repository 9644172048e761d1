"""Graph API call statistics per bot, as Workplace's Admin Panel shows them.

"Last API request": the last day a call was made, and the number of calls on each of the
last seven days (UTC). Every HTTP request to the Graph API counts, retries included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from .store import Store


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

    def summary(self, bot: str) -> dict:
        """``{"bot", "last_request_day", "last_7_days": [{"day", "calls"}, ...]}``, oldest day first."""
        today = self.today()
        days = [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
        db = self.store.connection()
        counts = dict(db.execute("SELECT day, calls FROM call_stats WHERE bot = ? AND day >= ?", (bot, days[0])))
        (last,) = db.execute("SELECT max(day) FROM call_stats WHERE bot = ?", (bot,)).fetchone()
        return {"bot": bot, "last_request_day": last,
                "last_7_days": [{"day": day, "calls": counts.get(day, 0)} for day in days]}
