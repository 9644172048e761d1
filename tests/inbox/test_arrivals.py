"""The per-process arrivals file: appends are committed at once, read in order, and ids never repeat."""

from __future__ import annotations

import sqlite3

from bots.inbox.arrivals import Arrivals, Reader


def test_an_append_is_committed_when_it_returns_and_another_connection_sees_it(tmp_path):
    arrivals = Arrivals(tmp_path)
    arrivals.append("echo", '[["k", "c", {}]]', 1.0)

    rows = sqlite3.connect(arrivals.path).execute("SELECT bot, items FROM arrivals").fetchall()

    assert rows == [("echo", '[["k", "c", {}]]')]


def test_rows_are_read_in_the_order_they_arrived(tmp_path):
    arrivals = Arrivals(tmp_path)
    for n in range(5):
        arrivals.append("echo", f"[{n}]", float(n))

    rows = Reader(arrivals).pending(limit=10)

    assert [row[2] for _, row in rows] == [f"[{n}]" for n in range(5)]


def test_ids_are_not_reused_after_every_row_was_forgotten(tmp_path):
    """A slow promoter deletes ``id <= n`` of the rows it read; a reused id would delete a new row."""
    arrivals, reader = Arrivals(tmp_path), Reader(Arrivals(tmp_path))
    arrivals.append("echo", "[1]", 1.0)
    [(path, (first, *_))] = reader.pending(limit=10)
    reader.forget(path, first)

    arrivals.append("echo", "[2]", 2.0)
    reader.forget(path, first)

    assert [row[0] > first for _, row in reader.pending(limit=10)] == [True]


def test_a_process_that_reopens_its_old_file_continues_after_the_last_id(tmp_path):
    """A restarted server may get its old pid back, and with it the old file."""
    first = Arrivals(tmp_path)
    first.append("echo", "[1]", 1.0)
    (last,) = sqlite3.connect(first.path).execute("SELECT max(id) FROM arrivals").fetchone()
    sqlite3.connect(first.path, isolation_level=None).execute("UPDATE arrivals SET id = ?", (last + 10**12,))

    again = Arrivals(tmp_path)
    again.append("echo", "[2]", 2.0)

    ids = [row[0] for row in sqlite3.connect(again.path).execute("SELECT id FROM arrivals ORDER BY id")]
    assert ids == [last + 10**12, last + 10**12 + 1]



def test_a_reader_checkpoints_after_it_forgets_so_the_writers_log_starts_over(tmp_path):
    """Checkpoints fsync; the reader runs them, so a request's append never waits for one."""
    arrivals, reader = Arrivals(tmp_path), Reader(Arrivals(tmp_path))
    for n in range(300):
        arrivals.append("echo", "[" + "x" * 500 + "]", float(n))
    found = reader.pending(limit=1000)

    reader.forget(found[-1][0], found[-1][1][0])
    arrivals.append("echo", "[1]", 1.0)

    _, frames_in_log, _ = sqlite3.connect(arrivals.path).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert frames_in_log < 10
