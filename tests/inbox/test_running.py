"""Events that run straight from their arrivals-log record: no copy of the body while they run, and, when
they cannot finish there (a retry, a burial, a holder that died), a row under the id kept for them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import zlib

from bots.deliveries import Deliveries, batch
from bots.inbox import SQLiteJournal
from bots.inbox.arrivals import HEADER
from bots.inbox.journal import Finished
from bots.store import Store

BUILD = Deliveries()


def delivery(*texts: str, sender: str = "100071") -> bytes:
    return json.dumps(batch(*(BUILD.message(text, sender=sender) for text in texts))).encode()


def texts(jobs) -> list[str]:
    return [job.item.data["message"]["text"] for job in jobs]


def rows(journal: SQLiteJournal, sql: str) -> list[tuple]:
    return journal.store.connection().execute(sql).fetchall()


def gone_owner() -> str:
    """A lease owner whose process has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{int(done.stdout)}:abcd"


def another_process(journal: SQLiteJournal) -> SQLiteJournal:
    """A second process on the same store: it shares nothing in memory with ``journal``."""
    return SQLiteJournal(Store(journal.store.path), dedupe_ttl=3600, lease_seconds=30, clock=journal.clock)


def test_an_event_that_runs_at_once_is_held_by_a_small_row_pointing_at_its_record(journal):
    journal.append("demo", delivery("hello"))
    [job] = journal.take("w", 10)

    assert rows(journal, "SELECT count(*) FROM inbox_events") == [(0,)]  # no copy of the body
    [(conversation, id, log, start, owner)] = rows(
        journal, "SELECT conversation, id, log, start, lease_owner FROM inbox_running")
    assert (conversation, id, log, start, owner) == (job.conversation, job.id, journal.arrivals.path.name, 0, "w")
    assert journal.finish([Finished(job)]) == [True]
    assert rows(journal, "SELECT count(*) FROM inbox_running") == [(0,)]


def test_an_event_whose_holder_died_is_read_back_from_its_log_under_the_same_id(journal):
    journal.append("demo", delivery("asked before the crash"))
    [lost] = journal.take(gone_owner(), 10)
    assert journal.release_orphans() == 1

    other = another_process(journal)  # nothing of the first take is in its memory
    [again] = other.take("w", 10)
    assert (again.id, again.attempts, texts([again])) == (lost.id, 2, ["asked before the crash"])
    assert other.finish([Finished(again)]) == [True]
    assert journal.counts() == {"events": 0, "messages": 0}


def test_a_retried_event_keeps_its_place_ahead_of_the_later_events_of_its_conversation(journal, clock):
    journal.append("demo", delivery("1", "2"))
    [first] = journal.take("w", 10)  # "1" runs from its record, "2" waits in the table
    [(waiting,)] = rows(journal, "SELECT id FROM inbox_events")
    assert first.id < waiting

    journal.retry(first, "RuntimeError: boom", 5, in_line=True)
    assert rows(journal, "SELECT id, in_line, attempts FROM inbox_events ORDER BY id") == [
        (first.id, 1, 1), (waiting, 1, 0)]
    clock.now += 5
    [again] = journal.take("w", 10)
    assert (again.id, texts([again])) == (first.id, ["1"])


def test_ids_kept_for_running_events_are_never_handed_out_again(journal):
    journal.append("demo", delivery("first"))
    [first] = journal.take("w", 10)
    journal.finish([Finished(first)])
    journal.append("demo", delivery("runs"))
    [held] = journal.take("w", 10)
    journal.append("demo", delivery("waits", sender="100072"))
    journal.promote()

    [(row,)] = rows(journal, "SELECT id FROM inbox_events")
    assert first.id < held.id < row
    journal.bury(held, "RuntimeError: nope")  # becomes a row under its own id: no clash
    assert sorted(letter["id"] for letter in journal.dead_letters()) == [f"event:{held.id}"]


def test_an_event_whose_record_was_removed_by_hand_becomes_a_dead_letter_saying_so(journal):
    journal.append("demo", delivery("lost"))
    journal.take(gone_owner(), 10)
    journal.arrivals.path.unlink()
    journal.release_orphans()

    assert journal.take("w", 10) == []
    [letter] = journal.dead_letters()
    assert "cannot be read back" in letter["error"] and letter["what"] == "an unreadable delivery"


def test_a_take_runs_the_earliest_arrivals_of_every_log_and_leaves_later_records_in_their_logs(journal):
    early = journal.arrivals.folder / "~peer-1-other-000000.log"  # listed after this process's log
    body = delivery("early", sender="100072")
    payload = b"demo\n" + body
    early.write_bytes(HEADER.pack(len(payload), zlib.crc32(payload), 999.0) + payload)  # before ours, from a peer
    journal.append("demo", delivery("later"))

    [first] = journal.take("w", 1)
    assert texts([first]) == ["early"]
    assert rows(journal, "SELECT count(*) FROM inbox_events") == [(0,)]  # "later" was not copied out of its log
    assert journal.counts()["events"] == 2
    assert texts(journal.take("w", 1)) == ["later"]


def test_a_finish_reports_which_of_its_events_were_still_held(journal):
    journal.append("demo", delivery("first", sender="1"))
    journal.append("demo", delivery("second", sender="2"))
    first, second = journal.take("w", 10)
    assert journal.finish([Finished(first)]) == [True]

    assert journal.finish([Finished(first), Finished(second)]) == [False, True]
    assert rows(journal, "SELECT count(*) FROM inbox_running") == [(0,)]
