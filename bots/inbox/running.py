"""Events that run straight from their arrivals-log record, with no copy of their body in the events table.

Most events run the moment they are read from a log: their conversation has nothing waiting or
running. Copying such an event's body into ``inbox_events``, leasing the row and deleting it a few
milliseconds later was most of the SQLite inbox's cost (four indexes touched three times, and
the body written to the WAL only to be deleted). Such an event is held instead by one small
``inbox_running`` row, keyed by its conversation (so two events of a conversation never run at once),
that says where its record is and who leases it, and that the finish deletes.

The log is the durable copy: a log is not removed while a running row points into it. When a lease
runs out (its process died) or the event fails and is retried or parked, the row becomes an ordinary
``inbox_events`` row, read back from the log under the id kept for it when it was taken: ids order a
conversation's line, so a retried event keeps its place ahead of the later events that wait for it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import arrivals as logs
from .arrivals import Torn
from .journal import Taken, storable

#: Bytes read to fetch one record back from its log (a longer record is read whole).
RECORD_READ_BYTES = 4096

#: Columns of a running row, as :func:`expired` and :func:`release` hand them on.
Running = tuple[str, int, str, str, int, int, float]

_BUSY = """
WITH wanted(conversation) AS (SELECT value FROM json_each(:conversations))
SELECT conversation FROM inbox_events WHERE dead = 0 AND in_line = 1 AND conversation IN wanted
UNION SELECT conversation FROM inbox_events WHERE lease_owner IS NOT NULL AND lease_until > :now
                                           AND conversation IN wanted
UNION SELECT conversation FROM inbox_running WHERE conversation IN wanted
"""

_COLUMNS = "conversation, id, bot, log, start, part, received_at"


def busy(db: sqlite3.Connection, conversations: Iterable[str], now: float) -> set[str]:
    """The conversations among ``conversations`` whose new event must wait: one of theirs waits in line,
    or runs (leased from the events table or held by a running row)."""
    wanted = list(conversations)
    if not wanted:
        return set()
    return {row[0] for row in db.execute(_BUSY, {"conversations": json.dumps(wanted), "now": now})}


def reserve(db: sqlite3.Connection, count: int) -> int:
    """Keep ``count`` consecutive ids of the events table for events that run from their record; the first one.
    ``AUTOINCREMENT`` never hands them out, so a running event can become a row under its own id."""
    if count <= 0:
        return 0
    row = db.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'inbox_events' RETURNING seq",
                     (count,)).fetchone()
    if row is not None:
        return int(row[0]) - count + 1
    ((top,),) = db.execute("SELECT coalesce(max(id), 0) FROM inbox_events")
    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('inbox_events', ?)", (top + count,))
    return int(top) + 1


def hold(db: sqlite3.Connection, rows: Sequence[tuple[str, int, str, str, int, int, float]], until: float,
         owner: str) -> None:
    """Lease events to ``owner`` as running rows: (conversation, id, bot, log, start, part, received_at) each; one
    statement per 100 rows (one step, where ``executemany`` steps once a row and hands the GIL over each time)."""
    for start in range(0, len(rows), 100):
        chunk = rows[start:start + 100]
        db.execute(f"INSERT INTO inbox_running ({_COLUMNS}, lease_until, lease_owner) VALUES "
                   + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                   [v for row in chunk for v in (*row, until, owner)])


def end(db: sqlite3.Connection, jobs: Sequence[Taken], table: str = "inbox_running") -> set[int | str]:
    """Delete the rows of ``jobs`` in ``table`` (running rows, or the events table's) that their owners still
    hold; the ids deleted. The ids are read as one ``group_concat`` rather than a ``RETURNING`` row each: two steps
    whatever the batch's size, so the request threads are not handed the GIL once per event."""
    ended: set[int | str] = set()
    for owner in {job.owner for job in jobs}:
        ids = [job.id for job in jobs if job.owner == owner]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            where = f"WHERE lease_owner = ? AND id IN ({', '.join('?' * len(chunk))})"
            ((held,),) = db.execute(f"SELECT group_concat(id) FROM {table} {where}", [owner, *chunk])
            if held:
                db.execute(f"DELETE FROM {table} {where}", [owner, *chunk])
                ended.update(int(id) for id in held.split(","))
    return ended


def renew(db: sqlite3.Connection, job: Taken, until: float) -> bool:
    """Extend a running row's lease, if ``job``'s owner still holds it."""
    return bool(db.execute("UPDATE inbox_running SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                           (until, job.id, job.owner)).rowcount)


def release(db: sqlite3.Connection, owner: str) -> int:
    """Let the running rows of a process that is gone run out at once: the next take makes them rows."""
    return db.execute("UPDATE inbox_running SET lease_until = 0 WHERE lease_owner = ?", (owner,)).rowcount


def owners(db: sqlite3.Connection) -> set[str]:
    return {owner for (owner,) in db.execute("SELECT DISTINCT lease_owner FROM inbox_running")}


def logs_in_use(db: sqlite3.Connection) -> set[str]:
    """The logs a running row points into: they must stay until those events are done."""
    return {log for (log,) in db.execute("SELECT DISTINCT log FROM inbox_running")}


def take_back(db: sqlite3.Connection, job: Taken) -> Running | None:
    """Remove ``job``'s running row if its owner holds it, for the caller to write it as a row; its columns."""
    rows = db.execute(f"DELETE FROM inbox_running WHERE id = ? AND lease_owner = ? RETURNING {_COLUMNS}",
                      (job.id, job.owner)).fetchall()
    return rows[0] if rows else None


def expired(db: sqlite3.Connection, now: float) -> list[Running]:
    """Remove the running rows whose lease ran out (their holder died or hung); their columns, to become rows."""
    return db.execute(f"DELETE FROM inbox_running WHERE lease_until <= ? RETURNING {_COLUMNS}", (now,)).fetchall()


def as_row(db: sqlite3.Connection, folder: Path, running: Running, now: float, *, available_at: float,
           attempts: int, in_line: bool = True, dead: bool = False, error: str | None = None) -> None:
    """Write a running event into the events table under its kept id, its body read back from its log; a record
    that cannot be read back (its log was removed by hand) becomes a dead letter saying so."""
    conversation, id, bot, log, start, part, received_at = running
    body = record_body(folder / log, start)
    if body is None:
        body, dead, error = b"", True, f"{log}: the record at {start} cannot be read back (the log is gone or torn)"
    db.execute("INSERT INTO inbox_events (id, bot, conversation, body, part, in_line, dead, attempts, available_at, "
               "error, received_at, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (id, bot, conversation, body, part, int(in_line), int(dead), attempts, available_at,
                storable(error) if error is not None else None, received_at, now if dead else None))


def record_body(path: Path, start: int) -> bytes | None:
    """The body of the record at ``start`` of ``path``, or None when it is not there whole."""
    for record in logs.read(path, start, 1, RECORD_READ_BYTES):
        return None if isinstance(record, Torn) else record.body
    return None


def counts(db: sqlite3.Connection) -> tuple[int, float | None]:
    """How many events run from their records, and when the longest-running of them arrived."""
    ((count, oldest),) = db.execute("SELECT count(*), min(received_at) FROM inbox_running")
    return count, oldest


def restore(db: sqlite3.Connection, folder: Path, now: float) -> int:
    """Make the expired running rows events-table rows, due now and in line; returns how many."""
    found = expired(db, now)
    for running in found:
        as_row(db, folder, running, now, available_at=now, attempts=1)
    return len(found)
