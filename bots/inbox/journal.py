"""The durable journal in SQLite: accepted events (and their dedupe keys), the outbox, state and dead letters.

Every write is one transaction. A delivery's items are appended inside the webhook request, before
the 200, as one row in this process's arrivals file (:mod:`bots.inbox.arrivals`), so the 200 costs
one small insert whatever the batch size and never waits on the main database. Workers move
arrivals into ``events`` in batches, dropping redeliveries there (the event's row is its dedupe
key). A worker takes an event under a lease, and finishing it (effects into the outbox, the state
saved, the event marked done) is one transaction that only the lease holder can commit. A worker
that dies leaves a lease that expires (or is released at once when its process is gone), and the
event is taken again. Events of one conversation are taken in order; so are its outgoing messages.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..envelope import Item
from ..outbox import Effect
from ..state import State, dumps
from ..store import Store
from .arrivals import Arrivals, Reader

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    bot TEXT NOT NULL,
    conversation TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ready',
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    error TEXT,
    received_at REAL NOT NULL,
    failed_at REAL
);
CREATE INDEX IF NOT EXISTS events_ready_conversation ON events (conversation, id) WHERE status = 'ready';
CREATE INDEX IF NOT EXISTS events_ready ON events (id) WHERE status = 'ready';
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    bot TEXT NOT NULL,
    conversation TEXT NOT NULL,
    effect TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ready',
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    failed_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_ready_conversation ON outbox (conversation, id) WHERE status = 'ready';
CREATE INDEX IF NOT EXISTS outbox_ready ON outbox (id) WHERE status = 'ready';
CREATE TABLE IF NOT EXISTS state (
    bot TEXT NOT NULL,
    conversation TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (bot, conversation)
) WITHOUT ROWID;
"""

#: Both queues share the claim query: the oldest due row whose conversation has no earlier row waiting.
_TAKE = """
SELECT id FROM {table} AS row
WHERE status = 'ready' AND available_at <= :now AND lease_until <= :now
  AND NOT EXISTS (SELECT 1 FROM {table} AS earlier
                  WHERE earlier.conversation = row.conversation AND earlier.id < row.id
                    AND earlier.status = 'ready')
ORDER BY id LIMIT 1
"""

TABLES = {"event": "events", "message": "outbox"}
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per call

_APPEND = ("INSERT OR IGNORE INTO events (dedupe_key, bot, conversation, item, available_at, received_at) "
           "VALUES (?, ?, ?, ?, ?, ?)")


@dataclass(frozen=True, slots=True)
class Taken:
    """An event a worker holds under a lease."""

    id: int
    bot: str
    conversation: str
    item: Item
    attempts: int
    owner: str


@dataclass(frozen=True, slots=True)
class TakenMessage:
    """An outgoing message a sender holds under a lease."""

    id: int
    key: str
    bot: str
    conversation: str
    effect: Effect
    attempts: int
    owner: str


class _LeaseLost(Exception):
    """Another worker took the event after this one's lease ran out."""


def owner_name() -> str:
    """Who holds a lease: host, process id and a random part, so a dead process's leases can be found."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Journal:
    """The inbox, outbox, dedupe, state and dead-letter tables of the embedded store."""

    def __init__(self, store: Store, dedupe_ttl: float = 36 * 3600, lease_seconds: float = 30,
                 clock=time.time) -> None:
        self.store = store
        self.dedupe_ttl = dedupe_ttl
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.store.connection().executescript(SCHEMA)
        self.arrivals = Arrivals(self.store.path.parent / "arrivals")
        self._reader = Reader(self.arrivals)
        self._promoting = threading.Lock()

    def append(self, bot: str, items: Sequence[Item]) -> None:
        """Record ``items`` for ``bot`` durably: one insert, committed when this returns."""
        rows = [[f"{bot}:{item.dedupe_key}", f"{bot}:{item.conversation_key}", item.to_dict()] for item in items]
        self.arrivals.append(bot, _COMPACT(rows), self.clock())

    def promote(self, limit: int = 200) -> int:
        """Move up to ``limit`` arrivals of each process into ``events`` in the order they arrived,
        skipping items whose dedupe key is already there; returns how many events are new.

        The rows are deleted from the arrivals files after the events are committed; a crash in
        between moves them again, and their dedupe keys make that a no-op.
        """
        if not self._promoting.acquire(blocking=False):
            return 0
        try:
            found = sorted(self._reader.pending(limit), key=lambda found: found[1][3])
            if not found:
                return 0
            rows = [(key, bot, conversation, _COMPACT(item), received, received)
                    for _, (_, bot, items, received) in found for key, conversation, item in json.loads(items)]
            with self.store.transaction() as db:
                added = db.executemany(_APPEND, rows).rowcount
            last: dict[Path, int] = {}
            for path, (id, *_) in found:
                last[path] = max(id, last.get(path, 0))
            for path, id in last.items():
                self._reader.forget(path, id)
            return added
        finally:
            self._promoting.release()

    def take(self, owner: str) -> Taken | None:
        """Move new arrivals into the events table, then lease the next event that may run now, or None."""
        self.promote()
        row = self._take("events", owner, "bot, conversation, item, attempts")
        if row is None:
            return None
        id, bot, conversation, item, attempts = row
        return Taken(id, bot, conversation, Item.from_dict(json.loads(item)), attempts, owner)

    def load_state(self, bot: str, conversation: str) -> State:
        row = self.store.connection().execute("SELECT data FROM state WHERE bot = ? AND conversation = ?",
                                              (bot, conversation)).fetchone()
        return State.loads(row[0] if row else None)

    def finish(self, taken: Taken, effects: Sequence[Effect], state: State | None = None) -> bool:
        """Mark the event done, queue its effects and save its state, all at once; False if the lease was lost."""
        now = self.clock()
        raw_state = dumps(state) if state is not None and state.changed else None
        try:
            with self.store.transaction() as db:
                self._finish(db, taken, effects, raw_state, now)
        except _LeaseLost:
            return False
        return True

    def _finish(self, db, taken: Taken, effects: Sequence[Effect], raw_state: str | None, now: float) -> None:
        if not db.execute("UPDATE events SET status = 'done', item = '', lease_until = 0, lease_owner = NULL, "
                          "error = NULL WHERE id = ? AND lease_owner = ?", (taken.id, taken.owner)).rowcount:
            raise _LeaseLost
        db.executemany(
            "INSERT INTO outbox (key, bot, conversation, effect, available_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(f"{taken.bot}:{taken.id}:{n}:{uuid.uuid4().hex[:12]}", taken.bot, taken.conversation,
              json.dumps(effect.to_dict()), now, now) for n, effect in enumerate(effects)])
        if raw_state is not None:
            db.execute("INSERT INTO state (bot, conversation, data, updated_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (bot, conversation) DO UPDATE SET data = excluded.data, "
                       "updated_at = excluded.updated_at", (taken.bot, taken.conversation, raw_state, now))

    def take_message(self, owner: str) -> TakenMessage | None:
        """Lease the next outgoing message that may go now, or None."""
        row = self._take("outbox", owner, "key, bot, conversation, effect, attempts")
        if row is None:
            return None
        id, key, bot, conversation, effect, attempts = row
        return TakenMessage(id, key, bot, conversation, Effect.from_dict(json.loads(effect)), attempts, owner)

    def sent(self, message: TakenMessage) -> None:
        """The message reached Graph: forget it."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM outbox WHERE id = ? AND lease_owner = ?", (message.id, message.owner))

    def renew(self, kind: str, id: int, owner: str) -> bool:
        """Extend ``owner``'s lease of an event or message by a lease period; False if it was lost."""
        with self.store.transaction() as db:
            return bool(db.execute(f"UPDATE {TABLES[kind]} SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                                   (self.clock() + self.lease_seconds, id, owner)).rowcount)

    def retry(self, kind: str, id: int, owner: str, error: str, delay: float) -> None:
        """Give the event or message back, to be tried again after ``delay`` seconds."""
        with self.store.transaction() as db:
            db.execute(f"UPDATE {TABLES[kind]} SET lease_until = 0, lease_owner = NULL, available_at = ?, error = ? "
                       "WHERE id = ? AND lease_owner = ?", (self.clock() + delay, error, id, owner))

    def bury(self, kind: str, id: int, owner: str, error: str) -> None:
        """Park the event or message among the dead letters, with why."""
        with self.store.transaction() as db:
            db.execute(f"UPDATE {TABLES[kind]} SET status = 'dead', lease_until = 0, lease_owner = NULL, error = ?, "
                       "failed_at = ? WHERE id = ? AND lease_owner = ?", (error, self.clock(), id, owner))

    def dead_letters(self) -> list[dict]:
        """Every parked event and message, oldest first, with its error; no message content."""
        db = self.store.connection()
        letters = [_event_letter(row) for row in db.execute(
            "SELECT id, bot, conversation, item, attempts, error, failed_at FROM events WHERE status = 'dead'")]
        letters += [_message_letter(row) for row in db.execute(
            "SELECT id, bot, conversation, effect, attempts, error, failed_at FROM outbox WHERE status = 'dead'")]
        return sorted(letters, key=lambda letter: letter["failed_at"] or 0)

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (``event:12``, ``message:7``) or, with None, all of them back in line."""
        tables, where, args = list(TABLES.values()), "status = 'dead'", [self.clock()]
        if letter_id is not None:
            kind, _, number = letter_id.partition(":")
            if kind not in TABLES or not number.isdigit():
                raise ValueError(f"a dead letter id looks like event:12 or message:7, got {letter_id!r}")
            tables, where = [TABLES[kind]], where + " AND id = ?"
            args.append(int(number))
        replayed = 0
        with self.store.transaction() as db:
            for table in tables:
                replayed += db.execute(f"UPDATE {table} SET status = 'ready', attempts = 0, available_at = ?, "
                                       f"error = NULL, failed_at = NULL WHERE {where}", args).rowcount
        return replayed

    def counts(self) -> dict[str, int]:
        """Events waiting and messages waiting (both read from the small partial indexes of ready rows)."""
        db = self.store.connection()
        ((events,),) = db.execute("SELECT count(*) FROM events WHERE status = 'ready'")
        events += self._reader.count()
        ((messages,),) = db.execute("SELECT count(*) FROM outbox WHERE status = 'ready'")
        return {"events": events, "messages": messages}

    def release_orphans(self) -> int:
        """Release leases held by processes of this host that no longer exist; returns how many."""
        host = socket.gethostname()
        released = 0
        db = self.store.connection()
        owners = {owner for table in TABLES.values() for (owner,) in db.execute(
            f"SELECT DISTINCT lease_owner FROM {table} WHERE lease_owner IS NOT NULL")}
        dead = [owner for owner in owners if _is_gone(owner, host)]
        with self.store.transaction() as db:
            for table in TABLES.values():
                for owner in dead:
                    released += db.execute(f"UPDATE {table} SET lease_until = 0, lease_owner = NULL "
                                           "WHERE lease_owner = ?", (owner,)).rowcount
        return released

    def purge_dedupe(self) -> int:
        """Drop done events received longer ago than the dedupe time-to-live, and with them their keys."""
        with self.store.transaction() as db:
            return db.execute("DELETE FROM events WHERE status = 'done' AND received_at < ?",
                              (self.clock() - self.dedupe_ttl,)).rowcount

    def _take(self, table: str, owner: str, columns: str) -> tuple | None:
        now = self.clock()
        with self.store.transaction() as db:
            row = db.execute(_TAKE.format(table=table), {"now": now}).fetchone()
            if row is None:
                return None
            db.execute(f"UPDATE {table} SET lease_until = ?, lease_owner = ?, attempts = attempts + 1 WHERE id = ?",
                       (now + self.lease_seconds, owner, row[0]))
            found = db.execute(f"SELECT id, {columns} FROM {table} WHERE id = ?", (row[0],)).fetchone()
        return found


def _is_gone(owner: str, host: str) -> bool:
    owner_host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if owner_host != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _event_letter(row: tuple) -> dict:
    id, bot, conversation, item, attempts, error, failed_at = row
    data = json.loads(item)
    return {"id": f"event:{id}", "kind": "event", "bot": bot, "conversation": conversation,
            "what": f"{data['object']} {data['kind']} item", "attempts": attempts, "error": error,
            "failed_at": failed_at}


def _message_letter(row: tuple) -> dict:
    id, bot, conversation, effect, attempts, error, failed_at = row
    return {"id": f"message:{id}", "kind": "message", "bot": bot, "conversation": conversation,
            "what": Effect.from_dict(json.loads(effect)).describe(), "attempts": attempts, "error": error,
            "failed_at": failed_at}
