"""The journal's guarantees, table by table: dedupe, leases, order, atomic completion, dead letters."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from bots.deliveries import Deliveries
from bots.envelope import parse
from bots.inbox import Journal
from bots.outbox import Effect
from bots.state import State
from bots.store import Store

BUILD = Deliveries()
REPLY = Effect("POST", "me/messages", {"recipient": {"id": "1"}, "message": {"text": "hi"}})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path, clock) -> Journal:
    return Journal(Store(tmp_path / "bots.sqlite3"), dedupe_ttl=3600, lease_seconds=30, clock=clock)


def items(*texts: str, sender: str = "100071"):
    return [item for text in texts for item in parse(json.dumps(BUILD.message(text, sender=sender)).encode())[1]]


def arrive(journal: Journal, bot: str, delivered) -> int:
    """Append and move to the events table, as a worker does; how many events were new."""
    journal.append(bot, delivered)
    return journal.promote()


def test_a_redelivered_item_becomes_one_event_until_its_key_expires(journal, clock):
    delivered = items("a")
    assert arrive(journal, "demo", delivered) == 1
    assert arrive(journal, "demo", delivered) == 0
    assert arrive(journal, "other", delivered) == 1  # keys are per bot
    clock.now += 3601
    assert journal.purge_dedupe() == 0  # an event not yet done keeps its key however old
    assert arrive(journal, "demo", delivered) == 0
    for _ in range(2):
        journal.finish(journal.take("w"), [])
    assert arrive(journal, "demo", delivered) == 0  # done, but within the time-to-live
    clock.now += 3601
    assert journal.purge_dedupe() == 2
    assert arrive(journal, "demo", delivered) == 1


def test_an_append_is_one_row_whatever_the_batch_and_events_keep_arrival_order(journal):
    journal.append("demo", items("1", "2", "3"))
    journal.append("demo", items("4"))
    assert journal.arrivals._connection().execute("SELECT count(*) FROM arrivals").fetchone() == (2,)
    assert journal.counts()["events"] == 2
    texts = []
    while taken := journal.take("w"):
        texts.append(taken.item.data["message"]["text"])
        journal.finish(taken, [])
    assert texts == ["1", "2", "3", "4"]
    assert journal.counts() == {"events": 0, "messages": 0}


def test_events_of_one_conversation_are_taken_one_at_a_time_in_order(journal):
    journal.append("demo", items("1", "2") + items("x", sender="100072"))
    first = journal.take("w1")
    other = journal.take("w2")
    assert first.item.data["message"]["text"] == "1"
    assert other.item.data["message"]["text"] == "x"
    assert journal.take("w3") is None  # "2" waits for "1"
    assert journal.finish(first, [])
    assert journal.take("w3").item.data["message"]["text"] == "2"


def test_an_expired_lease_lets_another_worker_take_the_event_and_only_it_can_finish(journal, clock):
    journal.append("demo", items("a"))
    stale = journal.take("w1")
    clock.now += 31
    fresh = journal.take("w2")
    assert fresh.id == stale.id and fresh.attempts == 2
    assert not journal.finish(stale, [REPLY])
    assert journal.finish(fresh, [REPLY])
    assert journal.counts() == {"events": 0, "messages": 1}


def test_a_renewed_lease_keeps_the_event_with_its_worker_and_only_the_holder_can_renew(journal, clock):
    journal.append("demo", items("a"))
    taken = journal.take("w1")
    clock.now += 25
    assert journal.renew("event", taken.id, "w1")
    assert not journal.renew("event", taken.id, "w2")
    clock.now += 25  # 50 s after the take, 25 s after the renewal

    assert journal.take("w2") is None
    assert journal.finish(taken, [REPLY])


def test_finishing_commits_effects_and_changed_state_together(journal):
    journal.append("demo", items("a"))
    taken = journal.take("w1")
    state = journal.load_state("demo", taken.conversation)
    state["step"] = "asked"
    assert journal.finish(taken, [REPLY, REPLY], state)
    assert journal.load_state("demo", taken.conversation) == {"step": "asked"}
    first = journal.take_message("s1")
    assert first.effect == REPLY and journal.take_message("s2") is None  # one conversation: in order
    journal.sent(first)
    assert journal.take_message("s2") is not None


def test_leases_of_a_process_that_is_gone_are_released_at_once(journal):
    journal.append("demo", items("a"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    journal.take(f"{socket.gethostname()}:{gone.stdout.strip()}:abcd")
    assert journal.take("w2") is None
    assert journal.release_orphans() == 1
    assert journal.take("w2") is not None


def test_dead_letters_are_listed_and_replayed_one_or_all(journal):
    journal.append("demo", items("a", "b", sender="1") + items("c", sender="2"))
    for _ in range(2):
        taken = journal.take("w")
        journal.bury("event", taken.id, "w", "RuntimeError: nope")
    letters = journal.dead_letters()
    assert [letter["id"] for letter in letters] == ["event:1", "event:2"]
    assert journal.replay("event:1") == 1
    assert journal.replay() == 1
    assert journal.replay() == 0
    with pytest.raises(ValueError, match="event:12 or message:7"):
        journal.replay("ticket:1")


def test_state_round_trips_and_an_unchanged_state_is_not_rewritten(journal):
    state = State({"a": [1, 2]})
    assert not state.changed
    state["a"].append(3)
    assert state.changed
    state.restore()
    assert state == {"a": [1, 2]}


def test_arrivals_left_by_a_process_that_died_are_moved_and_its_file_removed(journal):
    from bots.inbox.arrivals import connect
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = journal.arrivals.folder / f"{socket.gethostname()}-{gone.stdout.strip()}.sqlite3"
    rows = [[f"demo:{item.dedupe_key}", f"demo:{item.conversation_key}", item.to_dict()] for item in items("left")]
    connect(orphan).execute("INSERT INTO arrivals (bot, items, received_at) VALUES ('demo', ?, 1.0)",
                            (json.dumps(rows),))
    journal.append("demo", items("mine"))

    assert journal.promote() == 2
    texts = []
    while taken := journal.take("w"):
        texts.append(taken.item.data["message"]["text"])
        journal.finish(taken, [])
    assert texts == ["left", "mine"]
    journal.promote()
    assert not orphan.exists()
    assert journal.arrivals.path.exists()  # this process's own file stays
