"""An upgrade from the previous inbox tables loses nothing: waiting events, dedupe keys, outbox, arrivals."""

from __future__ import annotations

import json
import sqlite3

from bots.deliveries import Deliveries
from bots.envelope import parse
from bots.inbox import SQLiteJournal
from bots.store import Store

BUILD = Deliveries()

#: The previous version's tables, as it created them (abridged to the columns it wrote).
OLD = """
CREATE TABLE events (id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, bot TEXT NOT NULL,
    conversation TEXT NOT NULL, item TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'ready',
    attempts INTEGER NOT NULL DEFAULT 0, available_at REAL NOT NULL, lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT, error TEXT, received_at REAL NOT NULL, failed_at REAL);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, bot TEXT NOT NULL,
    conversation TEXT NOT NULL, effect TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'ready',
    attempts INTEGER NOT NULL DEFAULT 0, available_at REAL NOT NULL, lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT, error TEXT, created_at REAL NOT NULL, failed_at REAL);
"""


def old_item(text: str, sender: str):
    return parse(json.dumps(BUILD.message(text, sender=sender)).encode())[1][0]


def test_waiting_events_keys_and_messages_of_the_old_tables_are_carried_over(tmp_path):
    waiting, done = old_item("still waiting", "1001"), old_item("answered long ago", "1002")
    db = sqlite3.connect(tmp_path / "bots.sqlite3")
    db.executescript(OLD)
    for item, status in ((waiting, "ready"), (done, "done")):
        db.execute("INSERT INTO events (dedupe_key, bot, conversation, item, status, available_at, received_at) "
                   "VALUES (?, 'demo', ?, ?, ?, 1, 1)", (f"demo:{item.dedupe_key}", item.conversation_key,
                                                        json.dumps(item.to_dict()) if status == "ready" else "",
                                                        status))
    db.execute("INSERT INTO outbox (key, bot, conversation, effect, available_at, created_at) VALUES "
               "('k1', 'demo', 'user:1001', ?, 1, 1)",
               (json.dumps({"method": "POST", "path": "me/messages", "body": {"message": {"text": "hi"}}}),))
    db.commit()
    db.close()

    journal = SQLiteJournal(Store(tmp_path / "bots.sqlite3"))

    [taken] = journal.take("w", 10)
    assert taken.item == waiting
    [message] = journal.take_messages("w", 10)
    assert json.loads(message.body) == [{"method": "POST", "path": "me/messages", "body": {"message": {"text": "hi"}}}]
    journal.append("demo", json.dumps(BUILD.message("answered long ago", sender="1002", mid=done.data["message"]["mid"])
                                      ).encode())
    assert journal.take("w", 10) == []  # its dedupe key came along: the redelivery is dropped
