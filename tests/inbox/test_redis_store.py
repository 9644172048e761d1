"""The Redis journal's guarantees, script by script, on a real Redis: dedupe, locks, order, atomic finish,
retries, dead letters and replay."""

from __future__ import annotations

import json
import time

import pytest
import redis

from bots.deliveries import Deliveries
from bots.envelope import parse
from bots.inbox.redis_store import RedisJournal, lane_name
from bots.outbox import Effect
from bots.state import State

BUILD = Deliveries()
REPLY = Effect("POST", "me/messages", {"recipient": {"id": "1"}, "message": {"text": "hi"}})


@pytest.fixture
def client(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def journal(client) -> RedisJournal:
    return RedisJournal(client, prefix="t:", dedupe_ttl=3600, lease_seconds=0.3)


def items(*texts: str, sender: str = "100071"):
    return [item for text in texts for item in parse(json.dumps(BUILD.message(text, sender=sender)).encode())[1]]


def texts_of(journal: RedisJournal, lane: str) -> list[str]:
    """Run a lane to its end as one worker, returning the texts in the order they came."""
    seen = []
    while (claim := journal.take("event", lane, "w")).outcome == "take":
        seen.append(claim.item.data["message"]["text"])
        assert journal.finish("event", lane, "w", claim)
    return seen


def test_append_drops_redeliveries_and_keeps_the_key_with_its_ttl(journal, client):
    delivered = items("a", "b")
    assert journal.append("demo", delivered) == [lane_name("demo", delivered[0].conversation_key)]
    assert journal.append("demo", delivered) == []
    assert journal.append("other", delivered) == [lane_name("other", delivered[0].conversation_key)]
    assert journal.counts() == {"events": 4, "messages": 0}
    ttl = client.ttl(f"t:dedupe:demo:{delivered[0].dedupe_key}")
    assert 3500 < ttl <= 3600


def test_only_a_lane_that_was_empty_asks_for_a_worker_so_a_burst_enqueues_one_task(journal):
    [lane] = journal.append("demo", items("1"))
    assert [journal.append("demo", items(str(n))) for n in range(2, 50)] == [[]] * 48

    claim = journal.take("event", lane, "w")
    while claim.outcome == "take":  # the one worker woken goes through the whole burst
        assert journal.finish("event", lane, "w", claim)
        claim = journal.take("event", lane, "w")

    assert claim.outcome == "empty"
    assert journal.append("demo", items("after")) == [lane]


def test_a_lane_runs_in_order_and_one_worker_holds_it_at_a_time(journal):
    [lane] = journal.append("demo", items("1", "2", "3"))
    first = journal.take("event", lane, "w1")
    assert first.outcome == "take" and first.attempts == 1
    assert journal.take("event", lane, "w2").outcome == "busy"
    assert journal.finish("event", lane, "w1", first)
    assert texts_of(journal, lane) == []  # w1 still holds the lane
    journal.release("event", lane, "w1")
    assert texts_of(journal, lane) == ["2", "3"]
    assert journal.take("event", lane, "w").outcome == "empty"
    assert journal.counts()["events"] == 0


def test_finishing_queues_effects_and_saves_state_at_once_only_for_the_lock_holder(journal):
    [lane] = journal.append("demo", items("hi"))
    claim = journal.take("event", lane, "w1")
    state = State()
    state["step"] = 2
    time.sleep(0.35)  # the lease runs out; another worker takes the lane
    again = journal.take("event", lane, "w2")
    assert again.outcome == "take" and again.attempts == 2
    assert not journal.finish("event", lane, "w1", claim, [REPLY], state)
    assert journal.load_state("demo", claim.conversation) == {}
    assert journal.finish("event", lane, "w2", again, [REPLY, REPLY], state)
    assert journal.load_state("demo", claim.conversation) == {"step": 2}
    assert journal.counts() == {"events": 0, "messages": 2}
    message = journal.take("message", lane, "s")
    assert message.effect == REPLY and message.key.startswith(f"demo:{again.id}:0:")


def test_retry_holds_the_lane_until_due_and_bury_lets_it_go_on(journal):
    [lane] = journal.append("demo", items("bad", "next"))
    claim = journal.take("event", lane, "w")
    assert journal.retry("event", lane, "w", claim, "RuntimeError: no", 0.2)
    waiting = journal.take("event", lane, "w")
    assert waiting.outcome == "wait" and 0 < waiting.wait <= 0.2
    assert journal.idle_lanes("event") == []
    time.sleep(0.25)
    assert journal.idle_lanes("event") == [lane]
    claim = journal.take("event", lane, "w")
    assert claim.attempts == 2
    assert journal.bury("event", lane, "w", claim, "RuntimeError: no")
    assert journal.take("event", lane, "other").outcome == "busy"
    assert texts_of(journal, lane) == ["next"]
    [letter] = journal.dead_letters()
    assert letter["id"] == f"event:{claim.id}" and letter["attempts"] == 2 and letter["error"] == "RuntimeError: no"
    assert letter["what"] == "page messaging item"


def test_replay_puts_dead_letters_back_at_the_head_of_their_lane_in_order(journal):
    [lane] = journal.append("demo", items("1", "2", "3"))
    for _ in range(2):
        journal.bury("event", lane, "w", journal.take("event", lane, "w"), "boom")
    assert [letter["id"] for letter in journal.dead_letters()] == ["event:1", "event:2"]
    with pytest.raises(ValueError):
        journal.replay("bogus")
    assert journal.replay("event:99") == []
    assert journal.replay(None) == [("event", lane), ("event", lane)]
    assert journal.dead_letters() == []
    assert texts_of(journal, lane) == ["1", "2", "3"]


def test_idle_lanes_finds_expired_locks_and_forgets_empty_lanes(journal, client):
    [lane] = journal.append("demo", items("a"))
    assert journal.idle_lanes("event") == [lane]
    journal.take("event", lane, "w")
    assert journal.idle_lanes("event") == []
    time.sleep(0.35)
    assert journal.idle_lanes("event") == [lane]
    assert texts_of(journal, lane) == ["a"]
    assert journal.idle_lanes("event") == []
    assert client.smembers("t:lanes:event") == set()
