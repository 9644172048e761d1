"""The SQLite journal's guarantees through its public methods: dedupe, order, step-out retries, leases,
atomic finish, the outbox's order and progress, dead letters, purges and counts."""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from bots.deliveries import Deliveries, batch
from bots.envelope import parse
from bots.inbox import SQLiteJournal
from bots.inbox import sqlite_journal as module
from bots.inbox.journal import Finished, Progress, owner_name
from bots.outbox import Effect
from bots.store import Store

BUILD = Deliveries()


def reply(text: str) -> Effect:
    return Effect("POST", "me/messages", {"recipient": {"id": "100071"}, "message": {"text": text}})


def delivery(*texts: str, sender: str = "100071") -> bytes:
    """A body as Workplace sends it: one message for each text, all from ``sender``."""
    return json.dumps(batch(*(BUILD.message(text, sender=sender) for text in texts))).encode()


def texts(jobs) -> list[str]:
    return [job.item.data["message"]["text"] for job in jobs]


def finish(journal: SQLiteJournal, jobs, *effects: Effect, state: str | None = None) -> list[bool]:
    return journal.finish([Finished(job, list(effects), state) for job in jobs])


def rows(journal: SQLiteJournal, sql: str) -> list[tuple]:
    return journal.store.connection().execute(sql).fetchall()


def gone_pid() -> int:
    """The id of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


# Dedupe


def test_a_redelivered_body_becomes_one_event_until_its_digest_expires(journal, clock):
    body = delivery("a")
    journal.append("demo", body)
    journal.append("demo", body)
    journal.append("other", body)  # dedupe keys are per bot
    assert journal.promote() == 2

    finish(journal, journal.take("w", 10))
    journal.append("demo", body)
    assert journal.promote() == 0  # finished, but within the time-to-live
    clock.now += 3601
    assert journal.purge_dedupe() == 2
    journal.append("demo", body)
    assert journal.promote() == 1


def test_a_take_that_reads_redeliveries_among_new_events_runs_each_new_event_once(journal):
    old = delivery("old one", sender="1")
    journal.append("demo", old)
    finish(journal, journal.take("w", 10))
    for body in [delivery("new 1", sender="2"), old, delivery("new 2", sender="3"), old,
                 delivery("new 3", sender="4")]:
        journal.append("demo", body)

    assert sorted(texts(journal.take("w", 10))) == ["new 1", "new 2", "new 3"]


def test_a_message_repeated_within_one_delivery_is_one_event(journal):
    message = BUILD.message("twice")
    journal.append("demo", json.dumps(batch(message, message)).encode())

    assert journal.promote() == 1


def test_a_finished_event_leaves_only_its_16_byte_digest_behind(journal):
    journal.append("demo", delivery("a"))
    finish(journal, journal.take("w", 10))

    assert rows(journal, "SELECT count(*) FROM inbox_events") == [(0,)]
    assert rows(journal, "SELECT length(digest), at FROM inbox_seen") == [(16, 1000)]
    assert [column for _, column, *_ in rows(journal, "PRAGMA table_info(inbox_seen)")] == ["id", "digest", "at"]


def test_purge_drops_only_digests_older_than_the_ttl_in_chunks(journal, clock, monkeypatch):
    monkeypatch.setattr(module, "PURGE_CHUNK", 2)
    for n in range(5):
        journal.append("demo", delivery(f"old {n}"))
    clock.now += 1800
    journal.append("demo", delivery("recent"))
    journal.promote()

    clock.now += 1801  # the old ones are an hour old, the recent one half an hour
    assert journal.purge_dedupe() == 5
    assert rows(journal, "SELECT at FROM inbox_seen") == [(2800,)]
    assert journal.purge_dedupe() == 0


# Order


def test_take_gives_at_most_one_event_per_conversation_and_waits_for_the_running_one(journal):
    journal.append("demo", delivery("1", "2"))
    journal.append("demo", delivery("x", sender="100072"))

    first = journal.take("w1", 10)
    assert texts(first) == ["1", "x"]
    assert journal.take("w2", 10) == []  # "2" waits while "1" runs
    finish(journal, first[:1])
    assert texts(journal.take("w2", 10)) == ["2"]


def test_conversations_are_per_bot(journal):
    journal.append("demo", delivery("to demo"))
    journal.append("other", delivery("to other"))  # the same person writes to two bots

    assert sorted(texts(journal.take("w", 10))) == ["to demo", "to other"]


def test_a_retry_in_line_holds_its_conversation_until_it_is_done(journal, clock):
    journal.append("demo", delivery("1", "2"))
    [first] = journal.take("w", 10)
    journal.retry(first, "RuntimeError: boom", 5, in_line=True)

    assert journal.take("w", 10) == []  # "2" waits for "1", which waits for its retry
    clock.now += 5
    [again] = journal.take("w", 10)
    assert texts([again]) == ["1"] and again.attempts == 2
    finish(journal, [again])
    assert texts(journal.take("w", 10)) == ["2"]


def test_a_stepped_out_event_lets_its_conversation_go_on_and_runs_alone_when_due(journal, clock):
    journal.append("demo", delivery("1", "2", "3"))
    [first] = journal.take("w", 10)
    journal.retry(first, "RuntimeError: boom", 10, in_line=False)

    [second] = journal.take("w", 10)
    assert texts([second]) == ["2"]  # at once: "1" stepped out of line
    clock.now += 10
    assert journal.take("w", 10) == []  # "1" is due, but "2" of its conversation runs
    finish(journal, [second])

    [retried] = journal.take("w", 10)  # "1" and "3" may both run now, but never together
    assert texts([retried]) == ["1"] and retried.attempts == 2
    assert journal.take("w", 10) == []
    finish(journal, [retried])
    assert texts(journal.take("w", 10)) == ["3"]


def test_an_event_another_process_promoted_is_read_from_its_own_row(journal, tmp_path, clock):
    """Two processes share the store: ids must not be reused, or one would run the other's cached item."""
    other = SQLiteJournal(Store(tmp_path / "bots.sqlite3"), dedupe_ttl=3600, clock=clock)
    journal.append("demo", delivery("first"))
    journal.promote()
    finish(other, other.take("b", 10))  # the table is empty again
    other.append("demo", delivery("second"))
    other.promote()

    assert texts(journal.take("a", 10)) == ["second"]


def test_the_items_given_to_append_are_taken_without_parsing_the_body_again(journal, monkeypatch):
    body = delivery("parsed once")
    journal.append("demo", body, parse(body)[1])

    def parse_again(body):
        raise AssertionError("parsed again")
    monkeypatch.setattr(module, "parse", parse_again)
    assert texts(journal.take("w", 10)) == ["parsed once"]


# Leases


def test_a_lost_lease_makes_finish_return_false_and_drops_the_effects(journal, clock):
    journal.append("demo", delivery("a"))
    [stale] = journal.take("w1", 10)
    clock.now += 31
    [fresh] = journal.take("w2", 10)
    assert fresh.id == stale.id and fresh.attempts == 2

    assert finish(journal, [stale], reply("late"), state='{"by": "w1"}') == [False]
    assert journal.counts() == {"events": 1, "messages": 0}
    assert finish(journal, [fresh], reply("on time")) == [True]
    assert [json.loads(m.body)[0]["body"]["message"]["text"] for m in journal.take_messages("s", 10)] == ["on time"]
    assert journal.load_states([fresh]) == [{}]


def test_a_renewed_lease_keeps_the_event_with_its_holder_and_only_the_holder_can_renew(journal, clock):
    journal.append("demo", delivery("a"))
    [taken] = journal.take("w1", 10)
    clock.now += 25
    assert journal.renew([taken])
    assert not journal.renew([dataclasses.replace(taken, owner="w2")])
    clock.now += 25  # 50 s after the take, 25 s after the renewal

    assert journal.take("w2", 10) == []
    assert finish(journal, [taken]) == [True]


def test_leases_of_a_process_that_is_gone_are_released_and_live_ones_are_kept(journal):
    journal.append("demo", delivery("a"))
    journal.append("demo", delivery("b", sender="100072"))
    [dead] = journal.take(f"{socket.gethostname()}:{gone_pid()}:abcd", 1)
    [alive] = journal.take(owner_name(), 1)
    assert journal.take("w", 10) == []

    assert journal.release_orphans() == 1
    assert [job.id for job in journal.take("w", 10)] == [dead.id]
    assert finish(journal, [alive]) == [True]


def test_finish_writes_effects_state_and_completion_together_or_not_at_all(journal):
    journal.append("demo", delivery("a"))
    [taken] = journal.take("w", 10)
    journal.store.connection().execute(
        "CREATE TRIGGER no_state BEFORE INSERT ON state BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")

    with pytest.raises(Exception, match="disk I/O error"):
        finish(journal, [taken], reply("hi"), state='{"step": "asked"}')
    assert journal.counts() == {"events": 1, "messages": 0}

    journal.store.connection().execute("DROP TRIGGER no_state")
    assert finish(journal, [taken], reply("hi"), reply("again"), state='{"step": "asked"}') == [True]
    assert journal.load_states([taken]) == [{"step": "asked"}]
    [message] = journal.take_messages("s", 10)
    assert [effect["body"]["message"]["text"] for effect in json.loads(message.body)] == ["hi", "again"]
    assert journal.counts() == {"events": 0, "messages": 1}


# The outbox


def test_messages_of_one_conversation_go_in_order_one_at_a_time(journal, clock):
    journal.append("demo", delivery("1", "2"))
    journal.append("demo", delivery("x", sender="100072"))
    while jobs := journal.take("w", 10):
        for job in jobs:
            finish(journal, [job], reply(f"re {texts([job])[0]}"))

    def sent(messages):
        return [json.loads(message.body)[0]["body"]["message"]["text"] for message in messages]
    first = journal.take_messages("s1", 10)
    assert sent(first) == ["re 1", "re x"]
    assert journal.take_messages("s2", 10) == []  # "re 2" waits while "re 1" is out
    journal.retry(first[0], "Graph API: no answer", 5, in_line=False)
    assert journal.take_messages("s2", 10) == []  # a message never steps out of line
    clock.now += 5
    [again] = journal.take_messages("s2", 10)
    assert sent([again]) == ["re 1"] and again.attempts == 2
    journal.sent([again])
    assert sent(journal.take_messages("s2", 10)) == ["re 2"]


def test_a_retried_message_resumes_after_the_effects_that_went_out(journal, clock):
    journal.append("demo", delivery("a"))
    finish(journal, journal.take("w", 10), reply("1"), reply("2"), reply("3"))
    [message] = journal.take_messages("s1", 10)
    assert (message.done, message.results) == (0, ())

    assert journal.progress(message, Progress(1, [{"message_id": "m_1"}]))
    journal.retry(message, "Graph API: no answer", 5, in_line=False)
    clock.now += 5
    [again] = journal.take_messages("s2", 10)

    assert (again.done, again.results) == (1, ({"message_id": "m_1"},))
    clock.now += 31
    [taken_over] = journal.take_messages("s3", 10)
    assert not journal.progress(again, Progress(2, [{"message_id": "m_1"}, {"message_id": "m_2"}]))
    assert taken_over.done == 1


def test_a_sender_that_finds_no_message_due_does_not_wait_for_the_write_lock(journal):
    writer = sqlite3.connect(journal.store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process is writing, for as long as it likes
    try:
        done = threading.Event()
        threading.Thread(target=lambda: (journal.take_messages("sender"), done.set()), daemon=True).start()
        assert done.wait(2), "an empty look waited for the write lock"
    finally:
        writer.execute("ROLLBACK")


# Dead letters


def test_dead_letters_name_what_failed_without_its_content_and_replay_one_or_all(journal, clock):
    journal.append("demo", delivery("secret question"))
    journal.append("demo", delivery("another", sender="100072"))
    [event, other] = journal.take("w", 10)
    journal.bury(event, "RuntimeError: nope")
    finish(journal, [other], reply("secret answer"))
    clock.now += 1
    [message] = journal.take_messages("s", 10)
    journal.bury(message, "Graph API: Invalid OAuth access token. code=190 status=400")

    letters = journal.dead_letters()
    assert [(letter["id"], letter["what"], letter["error"]) for letter in letters] == [
        (f"event:{event.id}", "page messaging item", "RuntimeError: nope"),
        (f"message:{message.id}", "POST me/messages", "Graph API: Invalid OAuth access token. code=190 status=400")]
    assert "secret" not in json.dumps(letters)
    assert journal.counts() == {"events": 0, "messages": 0}

    assert journal.replay(f"event:{event.id}") == 1
    [replayed] = journal.take("w", 10)
    assert texts([replayed]) == ["secret question"] and replayed.attempts == 1
    assert journal.replay() == 1
    assert journal.take_messages("s", 10)[0].id == message.id
    assert journal.replay() == 0
    with pytest.raises(ValueError, match="event:12 or message:7"):
        journal.replay("ticket:1")


# Counts


def test_counts_include_records_not_yet_promoted(journal):
    journal.append("demo", delivery("a"))
    journal.append("demo", delivery("b", sender="100072"))
    assert journal.counts() == {"events": 2, "messages": 0}

    jobs = journal.take("w", 10)
    assert journal.counts() == {"events": 2, "messages": 0}
    finish(journal, jobs, reply("done"))
    assert journal.counts() == {"events": 0, "messages": 2}



def test_counts_see_one_state_when_a_promotion_commits_while_they_read(journal, monkeypatch):
    journal.append("demo", delivery("a"))
    count_unread = journal._unread

    def promote_first(db):  # another thread moves the record into the events table between the reads
        worker = threading.Thread(target=journal.take, args=("w", 10))
        worker.start()
        worker.join()
        return count_unread(db)

    monkeypatch.setattr(journal, "_unread", promote_first)
    assert journal.counts() == {"events": 1, "messages": 0}  # the delivery, once: not 0, not 2

def test_waiting_since_is_the_earliest_due_time_of_unfinished_work(journal, clock):
    assert journal.waiting_since() is None
    journal.append("demo", delivery("a"))
    assert journal.waiting_since() == 1000.0, "a record still in the arrivals log counts from its arrival"
    clock.now += 10
    journal.append("demo", delivery("b", sender="100072"))
    [first, second] = journal.take("w", 10)
    assert journal.waiting_since() == 1000.0, "running events count: a hung handler shows"

    finish(journal, [first])
    assert journal.waiting_since() == 1010.0
    journal.bury(second, "RuntimeError: nope")
    assert journal.waiting_since() is None, "parked work is not waiting"


def test_work_retried_later_is_not_waiting_until_it_is_due(journal, clock):
    journal.append("demo", delivery("a"))
    [job] = journal.take("w", 10)
    journal.retry(job, "RuntimeError: once", 30.0)
    assert journal.waiting_since() is None
    clock.now += 31
    assert journal.waiting_since() == 1030.0


def test_burying_an_event_with_its_error_handlers_effects_queues_them_in_the_same_step(journal, clock):
    journal.append("demo", delivery("boom"))
    [event] = journal.take("w", 10)
    journal.bury(event, "RuntimeError: boom", [reply("Sorry, that failed.")])
    assert [letter["id"] for letter in journal.dead_letters()] == [f"event:{event.id}"]
    [message] = journal.take_messages("s", 10)
    assert [effect["body"]["message"]["text"] for effect in json.loads(message.body)] == ["Sorry, that failed."]
    assert message.key.startswith(f"demo:{event.id}:")
