"""The embedded store: one SQLite file (WAL) under ``DATA_DIR`` shared by the framework's tables.

Each thread gets its own connection, so handler threads and request threads write side by
side; WAL lets readers go on while one writes. Each connection's page cache may grow to 2 MB, and a
worker has a dozen threads: SQLite's memory in the process is held under ``HEAP_LIMIT`` instead, past
which the caches reuse their pages (the file's pages stay in the kernel's cache either way).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS call_stats (
    bot TEXT NOT NULL,
    day TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (bot, day)
);
"""

#: SQLite's soft heap limit for the process (``PRAGMA soft_heap_limit``), in bytes. In the soak a worker's
#: connections held 3.8 MB, then 8.2 MB from a burst of backlog on, which they kept; 4 MB cost the bench's
#: two-worker SQLite path CPU (1.28-1.30x the floor against 1.18-1.22x), 8 MB did not.
HEAP_LIMIT = 8 * 1024 * 1024


class Store:
    """A SQLite database file with the framework's tables created on first open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._inherited: list[threading.local] = []
        self.create(SCHEMA)

    def create(self, schema: str, timeout: float = 30.0) -> None:
        """Create tables (``CREATE ... IF NOT EXISTS``), waiting while another process holds the write lock:
        gunicorn's workers open the file side by side."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connection().executescript(schema)
                return
            except sqlite3.OperationalError as error:
                if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            _wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=0")  # BEGIN IMMEDIATE waits in _begin; reads never wait in WAL mode
            db.execute(f"PRAGMA soft_heap_limit={HEAP_LIMIT}")  # for the whole process: the same on every connection
            self._local.db = db
        return db

    def forget_connections(self) -> None:
        """After a fork: open connections of this process's own from now on (SQLite's must not cross a fork). The
        inherited ones are kept, never closed here, where closing one could end the parent's WAL or locks."""
        self._inherited.append(self._local)
        self._local = threading.local()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on this thread's connection: every query in the block sees one committed state,
        so counts read one after another cannot miss work that a writer moved from one table to another."""
        db = self.connection()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        db = self.connection()
        begin(db)
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def begin(db: sqlite3.Connection, timeout: float = 30.0) -> None:
    """``BEGIN IMMEDIATE``, waiting for another writer in steps of a fraction of a millisecond. SQLite's own busy
    handler sleeps 1, 2, 5, 10 ... ms, so two processes whose transactions take a millisecond each would spend
    most of their time asleep; these short steps cost little CPU and keep them working."""
    deadline, pause = time.monotonic() + timeout, 0.0002
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 1.5, 0.005)


def _wal(db: sqlite3.Connection, tries: int = 50) -> None:
    """Switch to WAL. Two processes opening a new file at once can see "database is locked" here, where
    SQLite does not wait on its busy timeout (gunicorn's workers booting side by side), so wait and retry."""
    for attempt in range(tries):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == tries - 1:
                raise
            time.sleep(0.05)
