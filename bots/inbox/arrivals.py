"""Where the webhook writes before it answers 200: one small SQLite file per process, append only.

Each web process appends accepted deliveries to a file of its own (``arrivals/<host>-<pid>.sqlite3``
under ``DATA_DIR``) through one connection behind a lock, so requests never wait on another
process's write lock or on a worker's transaction in the main database. Workers move the rows into
the journal's events table (:meth:`Journal.promote`) and delete them here; a file whose process is
gone is removed once it is empty.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS arrivals (
    id INTEGER PRIMARY KEY,
    bot TEXT NOT NULL,
    items TEXT NOT NULL,
    received_at REAL NOT NULL
);
"""

Row = tuple[int, str, str, float]


#: Pages of WAL after which the writer checkpoints itself (about 40 MB): a safety net only, as readers
#: checkpoint after every promotion, off the request's path.
WRITER_CHECKPOINT_PAGES = 10_000


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """A connection to an arrivals file; only its own process (``create``) makes the table.

    The writer leaves checkpoints (which fsync, and once took 7 ms of a request) to the readers."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if create:
        db.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        db.executescript(SCHEMA)
    return db


class Arrivals:
    """This process's arrivals file; reopened under a new name after a fork."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pid = 0
        self._db: sqlite3.Connection | None = None
        self._last_id = 0

    @property
    def path(self) -> Path:
        return self.folder / f"{socket.gethostname()}-{os.getpid()}.sqlite3"

    def append(self, bot: str, items: str, received_at: float) -> None:
        """Store one delivery's items (JSON) durably: committed when this returns.

        Ids are microseconds since the epoch, kept increasing, so none is ever reused even when every
        row was deleted or a restarted process gets its old pid (and file) back; that costs less than
        SQLite's AUTOINCREMENT, which updates a second table on every insert."""
        with self._lock:
            db = self._connection()
            self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
            db.execute("INSERT INTO arrivals (id, bot, items, received_at) VALUES (?, ?, ?, ?)",
                       (self._last_id, bot, items, received_at))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            self._db, self._pid = connect(self.path), os.getpid()
            (last,) = self._db.execute("SELECT coalesce(max(id), 0) FROM arrivals").fetchone()
            self._last_id = max(self._last_id, last)
        return self._db

    def files(self) -> Iterator[Path]:
        """Every process's arrivals file in the folder."""
        return self.folder.glob("*.sqlite3")


class Reader:
    """A worker thread's view of every arrivals file: read the oldest rows, forget promoted ones."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self._local = threading.local()

    def pending(self, limit: int) -> list[tuple[Path, Row]]:
        """Up to ``limit`` rows of each file, each with its file."""
        found = []
        for path in self.arrivals.files():
            try:
                rows = self._db(path).execute("SELECT id, bot, items, received_at FROM arrivals ORDER BY id "
                                              "LIMIT ?", (limit,)).fetchall()
            except sqlite3.OperationalError:  # a file its process has just created, before its table
                continue
            if rows:
                found += [(path, row) for row in rows]
            else:
                self._remove_if_abandoned(path)
        return found

    def forget(self, path: Path, up_to: int) -> None:
        """Delete the rows of ``path`` up to id ``up_to``: they are in the events table now. Ids are
        never reused (see :meth:`Arrivals.append`), so a slow worker in another process cannot delete
        a newer row."""
        db = self._db(path)
        db.execute("DELETE FROM arrivals WHERE id <= ?", (up_to,))
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def count(self) -> int:
        """Deliveries waiting in every file."""
        total = 0
        for path in self.arrivals.files():
            try:
                total += self._db(path).execute("SELECT count(*) FROM arrivals").fetchone()[0]
            except sqlite3.OperationalError:
                continue
        return total

    def _db(self, path: Path) -> sqlite3.Connection:
        open_files = getattr(self._local, "dbs", None)
        if open_files is None:
            open_files = self._local.dbs = {}
        if path not in open_files:
            open_files[path] = connect(path, create=False)
        return open_files[path]

    def _remove_if_abandoned(self, path: Path) -> None:
        host, _, pid = path.stem.rpartition("-")
        if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            return
        self._local.dbs.pop(path).close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
