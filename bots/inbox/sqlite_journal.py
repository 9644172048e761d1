"""The journal in SQLite: accepted events, outbox messages, dedupe keys, state and dead letters on one machine.

A delivery is appended inside the webhook request, before the 200, as one record of this process's
arrivals log (:mod:`bots.inbox.arrivals`), so the 200 costs one ``write()`` and never waits on the
database. A worker's take reads the earliest unread records of every process's log, drops
redeliveries (``inbox_seen`` keeps a 16-byte digest of each dedupe key for ``DEDUPE_TTL_SECONDS``,
nothing more) and leases a batch, in one transaction with how far each log is read. An event whose
conversation is free runs straight from its record, held by a small ``inbox_running`` row
(:mod:`bots.inbox.running`); one that must wait, and one retried, parked or left by a holder that
died, is a row of ``inbox_events``. Finishing a batch (each event's effects into ``inbox_messages``,
its state saved, its row deleted) is one transaction too, and only a lease holder's rows are
touched. A finished event leaves nothing behind but its dedupe digest.

Order: an event runs only when no earlier event of its conversation is waiting in line and none of
its conversation is running. An event whose handler failed steps out of line (``in_line = 0``) to be
retried on its own, unless the inbox keeps strict order. A message waits for every earlier message
of its conversation, always: replies reach a person in the order they were made.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .. import metrics
from ..envelope import Item, parse
from ..outbox import Effect
from ..state import State
from ..store import Store
from . import arrivals as logs
from . import running
from .arrivals import Arrivals, Record, Torn
from .journal import Finished, Progress, Taken, TakenMessage, conversation_of, dedupe_key_of, digest, reason, storable
from .upgrade import upgrade

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a process keeps promoted items by id
    bot TEXT NOT NULL,
    conversation TEXT NOT NULL,
    body BLOB NOT NULL,
    part INTEGER NOT NULL DEFAULT 0,
    in_line INTEGER NOT NULL DEFAULT 1,
    dead INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    error TEXT,
    received_at REAL NOT NULL,
    failed_at REAL
);
CREATE INDEX IF NOT EXISTS inbox_events_pending ON inbox_events (id) WHERE dead = 0;
CREATE INDEX IF NOT EXISTS inbox_events_line ON inbox_events (conversation, id) WHERE dead = 0 AND in_line = 1;
CREATE INDEX IF NOT EXISTS inbox_events_leased ON inbox_events (conversation) WHERE lease_owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS inbox_running (
    conversation TEXT PRIMARY KEY,  -- one running event a conversation
    id INTEGER NOT NULL,  -- the inbox_events id kept for it, should it need a row (a retry, a crash)
    bot TEXT NOT NULL,
    log TEXT NOT NULL,  -- its record: where it starts in which arrivals log, and the item's place in it
    start INTEGER NOT NULL,
    part INTEGER NOT NULL,
    received_at REAL NOT NULL,
    lease_until REAL NOT NULL,
    lease_owner TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale sender's delete cannot hit a newer message
    key TEXT NOT NULL,
    bot TEXT NOT NULL,
    conversation TEXT NOT NULL,
    effects TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    results TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    failed_at REAL
);
CREATE INDEX IF NOT EXISTS inbox_messages_pending ON inbox_messages (id) WHERE dead = 0;
CREATE INDEX IF NOT EXISTS inbox_messages_line ON inbox_messages (conversation, id) WHERE dead = 0;
CREATE INDEX IF NOT EXISTS inbox_messages_leased ON inbox_messages (conversation) WHERE lease_owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS inbox_seen (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_arrivals (
    log TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    bot TEXT NOT NULL,
    conversation TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (bot, conversation)
) WITHOUT ROWID;
"""

#: Bytes read from a log to learn when its oldest unread record arrived (a longer record is read whole).
STATUS_READ_BYTES = 4096
#: Bytes read from a log for each record a take wants: about two of Workplace's one-message deliveries, so a take
#: of 30 under a backlog of thousands reads 60 KB rather than the megabyte a promotion of 500 reads.
RECORD_BYTES = 2048



class Entry(NamedTuple):
    """An item on its way out of a log: its bot, the item, when it arrived, the body it came in, its place
    there, and where that body's record starts in which log (so a running event can be read back)."""

    bot: str
    item: Item
    received_at: float
    body: bytes
    part: int
    log: str
    start: int


#: Due events that may run now: nothing earlier of their conversation waits in line, nothing of it runs (from the
#: table or from its record).
_TAKE_EVENTS = """
SELECT id, bot, conversation, body, part, attempts FROM inbox_events AS e
WHERE dead = 0 AND available_at <= :now AND lease_until <= :now
  AND NOT EXISTS (SELECT 1 FROM inbox_events AS x WHERE x.conversation = e.conversation
                  AND x.dead = 0 AND x.in_line = 1 AND x.id < e.id)
  AND NOT EXISTS (SELECT 1 FROM inbox_events AS x WHERE x.conversation = e.conversation
                  AND x.lease_owner IS NOT NULL AND x.lease_until > :now)
  AND NOT EXISTS (SELECT 1 FROM inbox_running AS r WHERE r.conversation = e.conversation)
ORDER BY id LIMIT :limit
"""

#: Due messages that may go now: the first waiting message of their conversation, which nobody holds.
_TAKE_MESSAGES = """
SELECT id, key, bot, conversation, effects, attempts, done, results FROM inbox_messages AS m
WHERE dead = 0 AND available_at <= :now AND lease_until <= :now
  AND NOT EXISTS (SELECT 1 FROM inbox_messages AS x WHERE x.conversation = m.conversation
                  AND x.dead = 0 AND x.id < m.id)
ORDER BY id LIMIT :limit
"""

TABLES = {"event": "inbox_events", "message": "inbox_messages"}
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode
PROMOTE_RECORDS = 500  # records moved into the events table at most by one promote()
FRESH_MAX = 1_000  # promoted items kept in memory until taken (the oldest go first); others are read back
CLEANUP_EVERY = 5.0  # seconds between looks for logs that are read to their end
PURGE_CHUNK = 5000  # dedupe digests dropped per statement, so a purge never holds the write lock for long


class SQLiteJournal:
    """The inbox, outbox, dedupe, state and dead-letter tables of the embedded store."""

    def __init__(self, store: Store, dedupe_ttl: float = 36 * 3600, lease_seconds: float = 30,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.dedupe_ttl = dedupe_ttl
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.store.create(SCHEMA)
        self.arrivals = Arrivals(self.store.path.parent / "arrivals")
        upgrade(self.store.connection(), self.arrivals.folder, clock())
        self._promoting = threading.Lock()
        self._next_cleanup = 0.0
        self._fresh: dict[int, Item] = {}  # items promoted by this take, by event id: no need to read them back

    def append(self, bot: str, body: bytes, items: Sequence[Item] | None = None) -> None:
        """Record a verified delivery for ``bot`` durably (one write to this process's log), before the 200;
        ``items`` (the body parsed) saves a worker of this process from parsing it again."""
        self.arrivals.append(bot, body, self.clock(), items)

    def take(self, owner: str, limit: int = 1) -> list[Taken]:
        """Lease up to ``limit`` events that may run now, at most one per conversation, in one transaction: due
        events of the table first, then arrivals read from the logs. An arrival whose conversation is free runs
        from its record (:mod:`bots.inbox.running`); the others, and any past ``limit``, wait in the table."""
        with self._promoting:
            if len(self._fresh) > FRESH_MAX:
                logs.drop_oldest(self._fresh, FRESH_MAX // 2)
            now = self.clock()
            if self._nothing_waits(now):
                return []
            until = now + self.lease_seconds
            with self.store.transaction() as db:
                running.restore(db, self.arrivals.folder, now)
                rows = db.execute(_TAKE_EVENTS, {"now": now, "limit": limit * 2}).fetchall()
                rows = _one_per_conversation(rows, 2)[:limit]
                _lease(db, "inbox_events", [row[0] for row in rows], until, owner)
                room = limit - len(rows)
                arrived = self._new_entries(db, self._read(db, now, room)) if room > 0 else []
                held = self._hold(db, arrived, {row[2] for row in rows}, room, now, owner)
            if time.monotonic() >= self._next_cleanup:
                self._next_cleanup = time.monotonic() + CLEANUP_EVERY
                self._remove_read_logs()
            return [Taken(id, bot, conversation, "", attempts + 1, owner, item=self._item(id, body, part))
                    for id, bot, conversation, body, part, attempts in rows] + held

    def _hold(self, db: sqlite3.Connection, arrived: list[tuple[Entry, str]], blocked: set[str], room: int,
              now: float, owner: str) -> list[Taken]:
        """Lease up to ``room`` new arrivals whose conversation is free as running rows, in the order they arrived;
        the rest (a conversation's later events, those past ``room``) go into the events table to wait in line."""
        if not arrived:
            return []
        blocked |= running.busy(db, {conversation for _, conversation in arrived}, now)
        held: list[tuple[Entry, str]] = []
        waiting: list[tuple[Entry, str]] = []
        for entry, conversation in arrived:
            (held if len(held) < room and conversation not in blocked else waiting).append((entry, conversation))
            blocked.add(conversation)
        first = running.reserve(db, len(held))
        running.hold(db, [(conversation, first + n, entry.bot, entry.log, entry.start, entry.part, entry.received_at)
                          for n, (entry, conversation) in enumerate(held)], now + self.lease_seconds, owner)
        self._insert(db, waiting)
        return [Taken(first + n, entry.bot, conversation, "", 1, owner, item=entry.item)
                for n, (entry, conversation) in enumerate(held)]

    def _nothing_waits(self, now: float) -> bool:
        """True when no log has unread records, no event is due and no running event's lease ran out: a look that
        writes nothing, so a thread that wakes to find its work taken costs a read instead of a write transaction."""
        db = self.store.connection()
        if self._logs_to_read(db):
            return False
        ((due,),) = db.execute("SELECT EXISTS (SELECT 1 FROM inbox_events WHERE dead = 0 AND available_at <= :now "
                               "AND lease_until <= :now) OR EXISTS (SELECT 1 FROM inbox_running "
                               "WHERE lease_until <= :now)", {"now": now})
        return not due

    def promote(self) -> int:
        """Move arrivals into the events table without taking any; returns how many events were new."""
        with self._promoting:
            with self.store.transaction() as db:
                added = self._insert(db, self._new_entries(db, self._read(db, self.clock(), PROMOTE_RECORDS)))
            self._remove_read_logs()
        return added

    def load_states(self, jobs: Sequence[Taken]) -> list[State]:
        """The state of each job's conversation, read in a query per bot: one statement whatever the batch's size,
        so it is prepared once (a chain of ``OR`` terms was planned anew for every size of batch)."""
        conversations: dict[str, set[str]] = {}
        for job in jobs:
            conversations.setdefault(job.bot, set()).add(job.conversation)
        found: dict[tuple[str, str], str] = {}
        db = self.store.connection()
        for bot, wanted in conversations.items():
            found.update(((bot, conversation), data) for conversation, data in db.execute(
                "SELECT conversation, data FROM state WHERE bot = ? AND conversation IN "
                "(SELECT value FROM json_each(?))", (bot, json.dumps(sorted(wanted)))))
        return [State.loads(found.get((job.bot, job.conversation))) for job in jobs]

    def finish(self, finished: Sequence[Finished]) -> list[bool]:
        """Delete each event, queue its effects as one outbox message and save its state, all at once."""
        now = self.clock()
        with self.store.transaction() as db:
            jobs = [done.job for done in finished]
            ended = running.end(db, jobs, "inbox_events") | running.end(db, jobs)
            kept = [done for done in finished if done.job.id in ended]
            _queue(db, [(done.job, done.effects) for done in kept if done.effects], now)
            states = [(done.job.bot, done.job.conversation, done.state, now) for done in kept if done.state is not None]
            if states:
                db.executemany("INSERT INTO state (bot, conversation, data, updated_at) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (bot, conversation) DO UPDATE SET data = excluded.data, "
                               "updated_at = excluded.updated_at", states)
        return [done.job.id in ended for done in finished]

    def take_messages(self, owner: str, limit: int = 1) -> list[TakenMessage]:
        """Lease up to ``limit`` outbox messages that may go now, the first of each conversation; a look that finds
        none due writes nothing (the sender threads' polls cost a read, not the write lock)."""
        now = self.clock()
        if self.store.connection().execute("SELECT 1 FROM inbox_messages WHERE dead = 0 AND available_at <= ? "
                                           "AND lease_until <= ? LIMIT 1", (now, now)).fetchone() is None:
            return []
        with self.store.transaction() as db:
            rows = db.execute(_TAKE_MESSAGES, {"now": now, "limit": limit * 2}).fetchall()
            rows = _one_per_conversation(rows, 3)[:limit]
            _lease(db, "inbox_messages", [row[0] for row in rows], now + self.lease_seconds, owner)
        return [TakenMessage(id, key, bot, conversation, effects, attempts + 1, owner, done,
                             tuple(json.loads(results)) if results else ())
                for id, key, bot, conversation, effects, attempts, done, results in rows]

    def progress(self, message: TakenMessage, progress: Progress) -> bool:
        with self.store.transaction() as db:
            return bool(db.execute("UPDATE inbox_messages SET done = ?, results = ? WHERE id = ? AND lease_owner = ?",
                                   (progress.done, _COMPACT(progress.results), message.id, message.owner)).rowcount)

    def sent(self, messages: Sequence[TakenMessage]) -> None:
        """These messages reached Graph: forget them."""
        with self.store.transaction() as db:
            db.executemany("DELETE FROM inbox_messages WHERE id = ? AND lease_owner = ?",
                           [(message.id, message.owner) for message in messages])

    def renew(self, jobs: Sequence[Taken | TakenMessage]) -> bool:
        """Extend the leases of ``jobs`` by a lease period; False if any was lost."""
        until = self.clock() + self.lease_seconds
        with self.store.transaction() as db:
            renewed = sum(bool(db.execute(f"UPDATE {_table(job)} SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                                          (until, job.id, job.owner)).rowcount)
                          or (isinstance(job, Taken) and running.renew(db, job, until)) for job in jobs)
        return renewed == len(jobs)

    def retry(self, job: Taken | TakenMessage, error: str, delay: float, *, in_line: bool = True) -> None:
        """Give the job back, due again after ``delay`` seconds; out of line, its conversation goes on without it."""
        now = self.clock()
        with self.store.transaction() as db:
            if isinstance(job, Taken) and (held := running.take_back(db, job)) is not None:
                running.as_row(db, self.arrivals.folder, held, now, available_at=now + delay, attempts=job.attempts,
                               in_line=in_line, error=error)
                return
            line = "" if isinstance(job, TakenMessage) else f", in_line = {int(in_line)}"
            db.execute(f"UPDATE {_table(job)} SET lease_until = 0, lease_owner = NULL, available_at = ?, error = ?"
                       f"{line} WHERE id = ? AND lease_owner = ?",
                       (now + delay, storable(error), job.id, job.owner))

    def bury(self, job: Taken | TakenMessage, error: str, effects: Sequence[Effect] = ()) -> None:
        """Park the job among the dead letters, with why, and queue an event's ``effects`` (its error handlers'
        messages) in the same transaction."""
        now = self.clock()
        with self.store.transaction() as db:
            if isinstance(job, Taken) and (held := running.take_back(db, job)) is not None:
                running.as_row(db, self.arrivals.folder, held, now, available_at=now, attempts=job.attempts,
                               dead=True, error=error)
                parked = 1
            else:
                parked = db.execute(f"UPDATE {_table(job)} SET dead = 1, lease_until = 0, lease_owner = NULL, "
                                    "error = ?, failed_at = ? WHERE id = ? AND lease_owner = ?",
                                    (storable(error), now, job.id, job.owner)).rowcount
            if parked and effects and isinstance(job, Taken):
                _queue(db, [(job, effects)], now)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every parked event and message, oldest first, with its error; no message content."""
        db = self.store.connection()
        letters = [_event_letter(row) for row in db.execute(
            "SELECT id, bot, conversation, body, part, attempts, error, failed_at FROM inbox_events WHERE dead = 1")]
        letters += [_message_letter(row) for row in db.execute(
            "SELECT id, bot, conversation, effects, attempts, error, failed_at FROM inbox_messages WHERE dead = 1")]
        return sorted(letters, key=lambda letter: letter["failed_at"] or 0)

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (``event:12``, ``message:7``) or, with None, all of them back in line."""
        tables, where, args = list(TABLES.values()), "dead = 1", [self.clock()]
        if letter_id is not None:
            kind, _, number = letter_id.partition(":")
            if kind not in TABLES or not number.isdigit():
                raise ValueError(f"a dead letter id looks like event:12 or message:7, got {letter_id!r}")
            tables, where = [TABLES[kind]], where + " AND id = ?"
            args.append(int(number))
        replayed = 0
        with self.store.transaction() as db:
            for table in tables:
                line = ", in_line = 1" if table == "inbox_events" else ""
                replayed += db.execute(f"UPDATE {table} SET dead = 0, attempts = 0, available_at = ?{line}, "
                                       f"error = NULL, failed_at = NULL WHERE {where}", args).rowcount
        return replayed

    def counts(self) -> dict[str, int]:
        """Events waiting (arrivals included) and messages waiting, read in one snapshot: read one by one, a
        promotion or a finish committed in between made work in flight count as none."""
        with self.store.snapshot() as db:
            ((events,),) = db.execute("SELECT count(*) FROM inbox_events WHERE dead = 0")
            held, _ = running.counts(db)
            ((messages,),) = db.execute("SELECT count(*) FROM inbox_messages WHERE dead = 0")
            unread = self._unread(db)
        return {"events": events + held + unread, "messages": messages}

    def waiting_since(self) -> float | None:
        """Since when the longest-waiting due work has waited (epoch seconds): the earliest due time of an event
        or message not yet finished nor parked (running ones included, so a hung handler shows), or the
        arrival of the oldest record not yet moved out of the logs; None when nothing is due."""
        now = self.clock()
        with self.store.snapshot() as db:
            ((events,),) = db.execute("SELECT min(available_at) FROM inbox_events WHERE dead = 0 "
                                      "AND available_at <= ?", (now,))
            ((messages,),) = db.execute("SELECT min(available_at) FROM inbox_messages WHERE dead = 0 "
                                        "AND available_at <= ?", (now,))
            _, held = running.counts(db)
            unread = [record.received_at for path, offset in self._logs_to_read(db)
                      for record in logs.read(path, offset, 1, STATUS_READ_BYTES) if not isinstance(record, Torn)]
        times = [t for t in (events, held, messages, *unread) if t is not None]
        return min(times) if times else None

    def release_orphans(self) -> int:
        """Release leases held by processes of this host that no longer exist; returns how many."""
        host = socket.gethostname()
        db = self.store.connection()
        owners = running.owners(db) | {owner for table in TABLES.values() for (owner,) in db.execute(
            f"SELECT DISTINCT lease_owner FROM {table} WHERE lease_owner IS NOT NULL")}
        dead = [owner for owner in owners if _is_gone(owner, host)]
        released = 0
        with self.store.transaction() as db:
            for owner in dead:
                for table in TABLES.values():
                    released += db.execute(f"UPDATE {table} SET lease_until = 0, lease_owner = NULL "
                                           "WHERE lease_owner = ?", (owner,)).rowcount
                released += running.release(db, owner)
        return released

    def purge_dedupe(self) -> int:
        """Drop dedupe digests older than the dedupe time-to-live, oldest first, a chunk per transaction."""
        cutoff, purged = int(self.clock() - self.dedupe_ttl), 0
        while True:
            with self.store.transaction() as db:
                count = db.execute("DELETE FROM inbox_seen WHERE id IN (SELECT id FROM inbox_seen ORDER BY id LIMIT ?) "
                                   "AND at < ?", (PURGE_CHUNK, cutoff)).rowcount
            purged += count
            if count < PURGE_CHUNK:
                return purged

    def _read(self, db: sqlite3.Connection, now: float, limit: int) -> list[Entry]:
        """The items of up to ``limit`` records not yet read, the earliest arrivals of every process's log (so a
        conversation's events keep the order they were accepted in, across processes too), and commit how far
        each log is read; records past ``limit`` stay in their logs for the next take."""
        found: list[tuple[Path, int, list[tuple[Record, int]], Torn | None]] = []
        for path, offset in self._logs_to_read(db):
            records, torn, start = [], None, offset
            for record in logs.read(path, offset, limit, min(logs.CHUNK_BYTES, limit * RECORD_BYTES)):
                if isinstance(record, Torn):
                    torn = record
                    break
                records.append((record, start))
                start = record.end
            found.append((path, offset, records, torn))
        first = sorted((record.received_at, n) for n, (_, _, records, _) in enumerate(found) for record, _ in records)
        taken = Counter(n for _, n in first[:limit])
        entries: list[Entry] = []
        for n, (path, offset, records, torn) in enumerate(found):
            kept = records[:taken[n]]
            for record, start in kept:
                entries += self._items(db, path, record, start, now)
            end = kept[-1][0].end if kept else offset
            if torn is not None and len(kept) == len(records):
                end = self._torn(db, path, torn, now)
            if end != offset:
                db.execute("INSERT INTO inbox_arrivals (log, offset) VALUES (?, ?) ON CONFLICT (log) DO UPDATE SET "
                           "offset = excluded.offset", (path.name, end))
        entries.sort(key=lambda entry: entry.received_at)
        return entries

    def _new_entries(self, db: sqlite3.Connection, entries: list[Entry]) -> list[tuple[Entry, str]]:
        """The entries whose dedupe digest is new, each with its conversation (per bot); redeliveries are dropped
        and counted, and their digests recorded, in a statement per 400."""
        new_entries: list[tuple[Entry, str]] = []
        for start in range(0, len(entries), 400):
            chunk = [(digest(entry.bot, dedupe_key_of(entry.item)), entry) for entry in entries[start:start + 400]]
            fresh = _first_of_each(chunk, _record_digests(db, chunk))
            if len(fresh) < len(chunk):
                _count_repeats(chunk, fresh)
            new_entries += [(entry, storable(f"{entry.bot}:{conversation_of(entry.item)}")) for _, entry in fresh]
        return new_entries

    def _insert(self, db: sqlite3.Connection, entries: list[tuple[Entry, str]]) -> int:
        """The entries as waiting events of the table, in a statement per 400; returns how many."""
        for start in range(0, len(entries), 400):
            chunk = entries[start:start + 400]
            values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
            last = db.execute(f"INSERT INTO inbox_events (bot, conversation, body, part, available_at, received_at) "
                              f"VALUES {values}", [v for entry, conversation in chunk for v in (
                                  entry.bot, conversation, entry.body, entry.part, entry.received_at,
                                  entry.received_at)]).lastrowid
            assert last is not None, "an INSERT sets lastrowid"
            first = last - len(chunk) + 1
            self._fresh.update((first + n, entry.item) for n, (entry, _) in enumerate(chunk))
        return len(entries)

    def _item(self, id: int, body: bytes, part: int) -> Item | None:
        """The item of event ``id``: kept from its promotion, else read from the stored body (None if it cannot be)."""
        item = self._fresh.pop(id, None)
        if item is not None:
            return item
        try:
            return parse(body)[1][part]
        except Exception:
            return None

    def _items(self, db: sqlite3.Connection, path: Path, record: Record, start: int, now: float) -> list[Entry]:
        """The items of one accepted delivery (as its request parsed them, when that was this process); one that
        cannot be read is parked as a dead letter instead, so it never stops the log."""
        try:
            items = self.arrivals.parsed.pop((path.name, record.end), None) or parse(record.body)[1]
        except Exception as error:
            db.execute("INSERT INTO inbox_events (bot, conversation, body, dead, error, available_at, received_at, "
                       "failed_at) VALUES (?, '', ?, 1, ?, ?, ?, ?)",
                       (storable(record.bot), record.body,
                        reason(f"could not read an accepted delivery: {reason(error)}"), now, record.received_at, now))
            return []
        return [Entry(record.bot, item, record.received_at, record.body, part, path.name, start)
                for part, item in enumerate(items)]

    def _logs_to_read(self, db: sqlite3.Connection) -> list[tuple[Path, int]]:
        """The logs with bytes past their committed offset, with that offset."""
        read = dict(db.execute("SELECT log, offset FROM inbox_arrivals"))
        own = self.arrivals.current()
        if own is not None:
            self.arrivals.forget_parsed(own.name, read.get(own.name, 0))
        found = []
        for path in self.arrivals.files():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size > read.get(path.name, 0):
                found.append((path, read.get(path.name, 0)))
        return found

    def _torn(self, db: sqlite3.Connection, path: Path, torn: Torn, now: float) -> int:
        """Bytes that are not a whole record: wait while the log's writer may still finish them, else park
        them as a dead letter and read past them."""
        if not logs.finished(path, self.arrivals.files()):
            return torn.start
        db.execute("INSERT INTO inbox_events (bot, conversation, body, dead, error, available_at, received_at, "
                   "failed_at) VALUES ('', '', x'', 1, ?, ?, ?, ?)",
                   (f"{path.name}: the bytes from {torn.start} are not a whole record (cut short by a crash)", now,
                    now, now))
        return path.stat().st_size

    def _remove_read_logs(self) -> None:
        """Delete logs read to their end whose writer will not write again, then forget their offsets."""
        db = self.store.connection()
        files, in_use = self.arrivals.files(fresh=True), running.logs_in_use(db)
        done = [path for path, offset in ((p, _offset(db, p)) for p in files if logs.finished(p, files))
                if offset is not None and offset >= _size(path) and path.name not in in_use]
        for path in done:
            path.unlink(missing_ok=True)
        if done:
            self.arrivals.files(fresh=True)
        if done:
            with self.store.transaction() as db:
                db.executemany("DELETE FROM inbox_arrivals WHERE log = ?", [(path.name,) for path in done])

    def _unread(self, db: sqlite3.Connection) -> int:
        """Records in the logs not yet moved into the events table (counted, not parsed)."""
        return sum(1 for path, offset in self._logs_to_read(db) for _ in logs.read(path, offset, 10**9))


def _offset(db: sqlite3.Connection, path: Path) -> int | None:
    row = db.execute("SELECT offset FROM inbox_arrivals WHERE log = ?", (path.name,)).fetchone()
    return row[0] if row else (0 if _size(path) == 0 else None)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _record_digests(db: sqlite3.Connection, chunk: list[tuple[bytes, Entry]]) -> set[bytes]:
    """Record the chunk's dedupe digests in one statement; the ones that were new. When all are (no redelivery),
    that is known from the count of rows inserted, so the statement steps once rather than once per event (each
    step hands the GIL to the request threads); else the new rows are read back by their ids, which one
    statement's inserts number consecutively."""
    cursor = db.execute(f"INSERT OR IGNORE INTO inbox_seen (digest, at) VALUES {', '.join(['(?, ?)'] * len(chunk))}",
                        [v for key, entry in chunk for v in (key, int(entry.received_at))])
    if cursor.rowcount == len(chunk):
        return {key for key, _ in chunk}
    if cursor.rowcount <= 0 or cursor.lastrowid is None:
        return set()
    last = cursor.lastrowid
    return {row[0] for row in db.execute("SELECT digest FROM inbox_seen WHERE id BETWEEN ? AND ?",
                                         (last - cursor.rowcount + 1, last))}


def _count_repeats(chunk: list[tuple[bytes, Entry]], fresh: list[tuple[bytes, Entry]]) -> None:
    """Count the redeliveries a promotion dropped as the metrics' ``duplicate`` events, each of its bot and kind."""
    kept = {id(entry) for _, entry in fresh}
    for _, entry in chunk:
        if id(entry) not in kept:
            metrics.event(entry.bot, metrics.kind_of(entry.item), "duplicate")


def _first_of_each(chunk: list[tuple[bytes, Entry]], new: set[bytes]) -> list[tuple[bytes, Entry]]:
    """The entries whose digest was new, each digest once (a delivery may repeat an item within one promotion),
    with their digest."""
    fresh = []
    for key, entry in chunk:
        if key in new:
            new.remove(key)
            fresh.append((key, entry))
    return fresh


def _one_per_conversation(rows: list[tuple[Any, ...]], column: int) -> list[tuple[Any, ...]]:
    """The first row of each conversation: two stepped-out events of one conversation never run at once."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row[column] not in seen:
            seen.add(row[column])
            kept.append(row)
    return kept


def _lease(db: sqlite3.Connection, table: str, ids: list[int], until: float, owner: str) -> None:
    """Lease the rows ``ids`` to ``owner`` until ``until``, counting an attempt, in one statement."""
    if ids:
        db.execute(f"UPDATE {table} SET lease_until = ?, lease_owner = ?, attempts = attempts + 1 "
                   f"WHERE id IN ({', '.join('?' * len(ids))})", [until, owner, *ids])


def _table(job: Taken | TakenMessage) -> str:
    return "inbox_messages" if isinstance(job, TakenMessage) else "inbox_events"


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


def _event_letter(row: tuple[Any, ...]) -> dict[str, Any]:
    id, bot, conversation, body, part, attempts, error, failed_at = row
    try:
        item = parse(body)[1][part]
        what = f"{item.object} {item.kind} item"
    except Exception:
        what = "an unreadable delivery"
    return {"id": f"event:{id}", "kind": "event", "bot": bot, "conversation": conversation, "what": what,
            "attempts": attempts, "error": error, "failed_at": failed_at}


def _message_letter(row: tuple[Any, ...]) -> dict[str, Any]:
    id, bot, conversation, effects, attempts, error, failed_at = row
    try:
        what = ", ".join(Effect.from_dict(effect).describe() for effect in json.loads(effects))
    except (ValueError, TypeError, KeyError):
        what = "unreadable effects"
    return {"id": f"message:{id}", "kind": "message", "bot": bot, "conversation": conversation, "what": what,
            "attempts": attempts, "error": error, "failed_at": failed_at}


def _queue(db: sqlite3.Connection, runs: Sequence[tuple[Taken, Sequence[Effect]]], now: float) -> None:
    """Queue each event's effects as one outbox message, keyed for Graph's idempotency."""
    if runs:
        db.executemany("INSERT INTO inbox_messages (key, bot, conversation, effects, available_at, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [(f"{job.bot}:{job.id}:{os.urandom(6).hex()}", job.bot, job.conversation,
                         _COMPACT([effect.to_dict() for effect in effects]), now, now) for job, effects in runs])
