"""Carry what an earlier version of the SQLite inbox left into the current tables, so an upgrade loses nothing.

Before 0.x the journal kept one ``events`` row per event (done ones too, for their dedupe key), an
``outbox`` row per effect, and per-process arrivals files in SQLite (``arrivals/*.sqlite3``). At
start-up the waiting and parked events, their dedupe keys, the outbox and any arrivals still in
those files move into ``inbox_events``, ``inbox_seen`` and ``inbox_messages``; the old tables and
files are then dropped. Each item becomes a one-item delivery body, which the current reader types
exactly as the original item.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from ..store import begin
from .journal import digest

logger = logging.getLogger("bots")


def body_of(item: dict[str, Any]) -> bytes:
    """A delivery body holding just ``item`` (the old journal's stored form), as Workplace would send it."""
    entry = {"id": item.get("entry_id"), "time": item.get("time"), item["kind"]: [item["data"]]}
    return json.dumps({"object": item["object"], "entry": [entry]}, separators=(",", ":")).encode()


def upgrade(db: sqlite3.Connection, arrivals: Path, now: float) -> int:
    """Move an earlier version's events, keys, outbox and arrivals into the current tables; returns how many
    events and messages were carried over."""
    moved = 0
    begin(db)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "events" in tables:
            moved += _events(db)
        if "outbox" in tables:
            moved += _outbox(db)
        moved += _arrivals(db, arrivals, now)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    for path in arrivals.glob("*.sqlite3*"):
        path.unlink(missing_ok=True)
    if moved:
        logger.info("carried %d events and messages over from the previous inbox tables", moved)
    return moved


def _events(db: sqlite3.Connection) -> int:
    rows = db.execute("SELECT dedupe_key, bot, conversation, item, status, attempts, error, received_at, failed_at "
                      "FROM events").fetchall()
    db.executemany("INSERT OR IGNORE INTO inbox_seen (digest, at) VALUES (?, ?)",
                   [(digest(*key.split(":", 1)) if ":" in key else digest("", key), int(received))
                    for key, _, _, _, _, _, _, received, _ in rows])
    waiting = [row for row in rows if row[4] in ("ready", "dead") and row[3]]
    db.executemany("INSERT INTO inbox_events (bot, conversation, body, dead, attempts, error, available_at, "
                   "received_at, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(bot, conversation, body_of(json.loads(item)), int(status == "dead"), attempts, error, received,
                     received, failed) for _, bot, conversation, item, status, attempts, error, received, failed
                    in waiting])
    db.execute("DROP TABLE events")
    return len(waiting)


def _outbox(db: sqlite3.Connection) -> int:
    rows = db.execute("SELECT key, bot, conversation, effect, status, attempts, error, created_at, failed_at "
                      "FROM outbox ORDER BY id").fetchall()
    db.executemany("INSERT INTO inbox_messages (key, bot, conversation, effects, dead, attempts, error, available_at, "
                   "created_at, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(key, bot, conversation, f"[{effect}]", int(status == "dead"), attempts, error, created, created,
                     failed) for key, bot, conversation, effect, status, attempts, error, created, failed in rows])
    db.execute("DROP TABLE outbox")
    return len(rows)


def _arrivals(db: sqlite3.Connection, folder: Path, now: float) -> int:
    """Arrivals the old per-process SQLite files still hold, as events (their keys decide redeliveries)."""
    moved = 0
    for path in sorted(folder.glob("*.sqlite3")):
        old = sqlite3.connect(path)
        try:
            rows = old.execute("SELECT bot, items, received_at FROM arrivals ORDER BY id").fetchall()
        except sqlite3.Error:
            rows = []
        finally:
            old.close()
        for bot, items, received in rows:
            for key, conversation, item in json.loads(items):
                if db.execute("INSERT OR IGNORE INTO inbox_seen (digest, at) VALUES (?, ?)",
                              (digest(bot, key), int(received))).rowcount:
                    db.execute("INSERT INTO inbox_events (bot, conversation, body, available_at, received_at) "
                               "VALUES (?, ?, ?, ?, ?)", (bot, conversation, body_of(item), now, received))
                    moved += 1
    return moved
