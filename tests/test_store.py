"""The embedded store: a connection per thread, and SQLite's memory held under one limit for the process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bots.store import HEAP_LIMIT


def _shared_sqlite() -> bool:
    """True when Python's sqlite3 runs on the system's libsqlite3 (mapped into this process), whose memory
    counter the test reads."""
    sqlite3.connect(":memory:").close()
    return "libsqlite3" in Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else False


#: Eight threads each read a 100,000-row index through their own connection and keep it open while the
#: process's SQLite memory is read (``sqlite3_memory_used``): printed in bytes.
MANY_CONNECTIONS = """
import ctypes, ctypes.util, sys, threading
from bots.store import Store
store = Store(sys.argv[1])
with store.transaction() as db:
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d BLOB UNIQUE)")
    db.executemany("INSERT INTO t (d) VALUES (randomblob(16))", [()] * 100_000)
read, done = threading.Barrier(9), threading.Event()
def reader():
    db = store.connection()
    for _ in range(3000):
        db.execute("SELECT 1 FROM t WHERE d = randomblob(16)").fetchall()
    db.execute("SELECT count(*), sum(length(d)) FROM t").fetchall()
    read.wait()
    done.wait()
threads = [threading.Thread(target=reader) for _ in range(8)]
for thread in threads: thread.start()
read.wait()
lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
lib.sqlite3_memory_used.restype = ctypes.c_int64
print(lib.sqlite3_memory_used())
done.set()
"""


@pytest.mark.skipif(not _shared_sqlite(), reason="reads the memory counter of the system's libsqlite3")
def test_a_dozen_connections_keep_sqlite_memory_near_the_process_limit(tmp_path):
    used = int(subprocess.run([sys.executable, "-c", textwrap.dedent(MANY_CONNECTIONS), str(tmp_path / "s.sqlite3")],
                              capture_output=True, text=True, check=True, timeout=120).stdout)

    assert used < HEAP_LIMIT * 1.25  # eight 2 MB page caches would hold 16 MB
