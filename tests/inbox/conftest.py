"""Fixtures of the SQLite journal's tests: a clock the test moves, and a journal that reads it."""

from __future__ import annotations

import pytest

from bots.inbox import SQLiteJournal
from bots.store import Store


class Clock:
    """The journal's time: it only moves when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path, clock) -> SQLiteJournal:
    """A journal with a one-hour dedupe time-to-live and 30-second leases, on a fresh store."""
    return SQLiteJournal(Store(tmp_path / "bots.sqlite3"), dedupe_ttl=3600, lease_seconds=30, clock=clock)
