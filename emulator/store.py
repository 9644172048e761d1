"""The emulator's state: one SQLite file (or memory, for tests), one connection behind a lock.

Everything Workplace keeps lives here: integrations and their settings, webhook subscriptions,
the delivery log, API call counts, people, groups, posts, comments, chat threads and messages.
A single connection guarded by a lock is plenty for one person clicking and a few bots answering.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger("emulator")

#: Raised whenever SCHEMA changes; a database of an older version is brought up to date by MIGRATIONS.
SCHEMA_VERSION = "3"

#: What Graph reads of a person besides the people row (schema 3): department, manager, locale.
PROFILES = ("CREATE TABLE IF NOT EXISTS profiles (person_id TEXT PRIMARY KEY, department TEXT NOT NULL DEFAULT '', "
            "manager_id TEXT, locale TEXT NOT NULL DEFAULT 'en_US')")

#: The statements that take a database from the version named to the next one.
MIGRATIONS = {
    "1": ("ALTER TABLE people ADD COLUMN role TEXT NOT NULL DEFAULT 'employee'",),
    "2": (PROFILES,),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS integrations (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', logo_url TEXT NOT NULL DEFAULT '',
    app_secret TEXT NOT NULL, access_token TEXT, page_id TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL DEFAULT 1, discoverable INTEGER NOT NULL DEFAULT 0,
    permissions TEXT NOT NULL DEFAULT '[]', require_proof INTEGER NOT NULL DEFAULT 0,
    ip_allow TEXT NOT NULL DEFAULT '', link_domains TEXT NOT NULL DEFAULT '[]',
    error_rate REAL NOT NULL DEFAULT 0, latency_ms INTEGER NOT NULL DEFAULT 0,
    profile TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS retired_tokens (digest TEXT PRIMARY KEY, integration_id TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    integration_id TEXT NOT NULL, topic TEXT NOT NULL, callback_url TEXT NOT NULL, verify_token TEXT NOT NULL,
    fields TEXT NOT NULL, PRIMARY KEY (integration_id, topic));
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, integration_id TEXT NOT NULL, day TEXT NOT NULL, time REAL NOT NULL,
    method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, code INTEGER);
CREATE INDEX IF NOT EXISTS calls_by_day ON calls (integration_id, day);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, integration_id TEXT NOT NULL, time REAL NOT NULL, topic TEXT NOT NULL,
    entries INTEGER NOT NULL, status TEXT NOT NULL, latency_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1, role TEXT NOT NULL DEFAULT 'employee');
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS members (group_id TEXT NOT NULL, member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id));
CREATE TABLE IF NOT EXISTS posts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, group_id TEXT NOT NULL,
    post_id TEXT, parent_id TEXT, author_id TEXT NOT NULL, message TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS likes (object_id TEXT NOT NULL, actor_id TEXT NOT NULL, PRIMARY KEY (object_id, actor_id));
CREATE TABLE IF NOT EXISTS threads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '',
    is_group INTEGER NOT NULL, typing_until REAL NOT NULL DEFAULT 0, seen_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS participants (thread_id TEXT NOT NULL, member_id TEXT NOT NULL,
    PRIMARY KEY (thread_id, member_id));
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, thread_id TEXT NOT NULL,
    sender_id TEXT NOT NULL, body TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_thread ON messages (thread_id, seq);
""" + PROFILES + ";\n"


class StaleDatabase(RuntimeError):
    """The database's schema is not the one this emulator writes."""


class Store:
    """A SQLite database shared by the emulator's threads; rows come back as dicts."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run several statements atomically (other threads wait)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run one statement; returns the last inserted row id."""
        with self._lock:
            return self._db.execute(sql, tuple(args)).lastrowid or 0

    def all(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, tuple(args)).fetchall()]

    def one(self, sql: str, args: Iterable[Any] = ()) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(sql, tuple(args)).fetchone()
        return dict(row) if row else None

    def value(self, sql: str, args: Iterable[Any] = ()) -> Any:
        row = self.one(sql, args)
        return next(iter(row.values())) if row else None

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A setting of the database itself (its seed version, the session key)."""
        found = self.value("SELECT value FROM meta WHERE key = ?", (key,))
        return default if found is None else found

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def check_version(self) -> None:
        """Bring a database of an older version up to date, or stop with a clear message when it was written
        by another version of the emulator."""
        found = self.meta("schema_version")
        if found is None and self.is_empty():
            self.set_meta("schema_version", SCHEMA_VERSION)
            return
        while found in MIGRATIONS:
            found = self._migrate(found)
        if found != SCHEMA_VERSION:
            raise StaleDatabase(f"{self.path} was written by another version of the emulator: start from a fresh one "
                                "with `make run RESET=1` (or `python -m emulator --reset`)")

    def _migrate(self, version: str) -> str:
        """Run the statements that take the database from ``version`` to the next; returns the new version."""
        following = str(int(version) + 1)
        with self.transaction() as db:
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.set_meta("schema_version", following)
        logger.info("%s: brought up to date (schema %s to %s); your data is kept", self.path, version, following)
        return following

    def is_empty(self) -> bool:
        """True for a database nobody has seeded yet."""
        return self.meta("seeded") is None


def dumps(value: Any) -> str:
    """JSON for a column, compact."""
    return json.dumps(value, separators=(",", ":"))


def now() -> float:
    return time.time()
