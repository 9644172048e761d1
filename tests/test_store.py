"""The embedded store: write transactions of every process and thread queue on one lock file, in turn."""

from __future__ import annotations

import fcntl
import os
import threading

from bots.store import Store


def test_a_write_transaction_waits_its_turn_on_the_lock_file(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    began = threading.Event()

    def write() -> None:
        with store.transaction() as db:
            began.set()
            db.execute("INSERT INTO call_stats (bot, day, calls) VALUES ('demo', '2026-12-01', 1)")
    holder = os.open(tmp_path / "s.sqlite3.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process's writer, in its transaction
    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not began.wait(0.3)
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert began.wait(5)
    writer.join(5)
    assert store.connection().execute("SELECT calls FROM call_stats").fetchall() == [(1,)]


def test_threads_write_one_at_a_time_and_none_is_left_out(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    inside, most = [0], [0]
    lock = threading.Lock()

    def write(n: int) -> None:
        for day in range(20):
            with store.transaction() as db:
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                db.execute("INSERT INTO call_stats (bot, day, calls) VALUES (?, ?, 1)", (f"b{n}", str(day)))
                with lock:
                    inside[0] -= 1
    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most[0] == 1
    assert store.connection().execute("SELECT count(*) FROM call_stats").fetchone() == (120,)
