"""The Redis journal's guarantees, script by script, on a real Redis: dedupe, lane locks, order, one event per
conversation per batch, atomic finish, stepping out of line, retries in line, progress, dead letters, replay,
wake-ups and ids no UTF-8 can hold."""

from __future__ import annotations

import json
import time

import pytest
import redis

from bots.deliveries import Deliveries
from bots.envelope import parse
from bots.inbox.journal import Finished, Progress, Taken, read_item
from bots.inbox.redis_journal import RedisJournal, lane_name
from bots.outbox import Effect

BUILD = Deliveries()
REPLY = Effect("POST", "me/messages", {"recipient": {"id": "1"}, "message": {"text": "hi"}})
LIKE = Effect("POST", "123_456/likes", None)


@pytest.fixture
def client(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def wakes() -> list[tuple[str, str, float]]:
    return []


@pytest.fixture
def journal(client, wakes) -> RedisJournal:
    return RedisJournal(client, prefix="t:", dedupe_ttl=3600, lease_seconds=0.3,
                        wake=lambda kind, token, delay: wakes.append((kind, token, delay)))


def items(*texts: str, sender: str = "100071"):
    return [item for text in texts for item in parse(json.dumps(BUILD.message(text, sender=sender)).encode())[1]]


def text(job: Taken) -> str:
    return read_item(job.body).data["message"]["text"]


def finish(journal: RedisJournal, *jobs: Taken, effects=(), state: str | None = None) -> list[bool]:
    return journal.finish([Finished(job, list(effects), state) for job in jobs])


def run_all(journal: RedisJournal, owner: str = "w") -> list[str]:
    """Take and finish until nothing is ready, one worker; the texts in the order they ran."""
    seen = []
    while jobs := journal.take(owner, 10):
        seen += [text(job) for job in jobs]
        assert all(finish(journal, *jobs))
    return seen


def test_append_drops_redeliveries_and_keeps_the_key_with_its_ttl(journal, client):
    delivered = items("a", "b")
    assert journal.append("demo", delivered) == 2
    assert journal.append("demo", delivered) == 0
    assert journal.append("other", delivered) == 2
    assert journal.counts() == {"events": 4, "messages": 0}
    assert 3500 < client.ttl(f"t:dedupe:demo:{delivered[0].dedupe_key}") <= 3600


def test_a_batch_holds_one_event_per_conversation_and_a_lane_runs_in_order(journal):
    journal.append("demo", items("a1", "a2", "a3", sender="1"))
    journal.append("demo", items("b1", sender="2"))
    first = journal.take("w1", 10)
    assert sorted(text(job) for job in first) == ["a1", "b1"] and {job.attempts for job in first} == {1}
    assert journal.take("w2", 10) == []  # both lanes are held
    assert all(finish(journal, *first))
    assert run_all(journal, "w2") == ["a2", "a3"]
    assert journal.counts() == {"events": 0, "messages": 0}


def test_finishing_queues_the_effects_as_one_message_and_saves_state_only_for_the_lock_holder(journal):
    journal.append("demo", items("hi"))
    [job] = journal.take("w1")
    time.sleep(0.35)  # the lease runs out; the sweeper hands the lane to another worker
    journal.sweep("event")
    [again] = journal.take("w2")
    assert again.attempts == 2
    assert finish(journal, job, effects=[REPLY], state='{"step":1}') == [False]
    assert journal.load_states([job]) == [{}]
    assert finish(journal, again, effects=[REPLY, LIKE], state='{"step":2}') == [True]
    assert journal.load_state("demo", again.conversation) == {"step": 2}
    assert journal.counts() == {"events": 0, "messages": 1}
    [message] = journal.take_messages("s")
    assert json.loads(message.body) == [REPLY.to_dict(), LIKE.to_dict()]
    assert message.key.startswith(f"demo:{again.id}:") and (message.done, message.results) == (0, ())
    assert message.lane == again.lane == lane_name("demo", again.conversation)


def test_a_failing_event_steps_out_of_line_and_comes_back_under_its_lanes_lock(journal):
    journal.append("demo", items("bad", "next", "last"))
    [bad] = journal.take("w")
    journal.retry(bad, "RuntimeError: no", 0.2, in_line=False)
    [following] = journal.take("w")
    assert text(following) == "next"  # the lane went on at once
    time.sleep(0.25)
    assert journal.take("other", 10) == []  # "bad" is due, but its conversation is running
    assert finish(journal, following) == [True]
    again = journal.take("w", 10)
    assert [text(job) for job in again] == ["bad"] and again[0].attempts == 2
    assert journal.take("other", 10) == []  # one event of a conversation at a time
    assert finish(journal, *again) == [True]
    assert run_all(journal) == ["last"]
    assert journal.counts()["events"] == 0


def test_a_retry_in_line_holds_the_lane_until_it_is_due(journal, wakes):
    journal.append("demo", items("bad", "next"))
    [bad] = journal.take("w")
    journal.retry(bad, "RuntimeError: no", 0.2, in_line=True)
    assert wakes[-1] == ("event", "", 0.2)  # a worker is woken when it is due
    assert journal.take("w", 10) == []
    time.sleep(0.25)
    [again] = journal.take("w", 10)
    assert text(again) == "bad" and again.attempts == 2
    assert finish(journal, again) == [True]
    assert run_all(journal) == ["next"]


def test_bury_parks_the_event_with_its_reason_and_replay_puts_it_back_at_the_head(journal):
    journal.append("demo", items("1", "2", "3"))
    [one] = journal.take("w")
    journal.bury(one, "RuntimeError: no")
    [two] = journal.take("w")
    journal.bury(two, "RuntimeError: no")
    letters = journal.dead_letters()
    assert [letter["id"] for letter in letters] == [f"event:{one.id}", f"event:{two.id}"]
    assert letters[0]["what"] == "page messaging item" and letters[0]["error"] == "RuntimeError: no"
    assert letters[0]["attempts"] == 1
    with pytest.raises(ValueError):
        journal.replay("bogus")
    assert journal.replay("event:99") == 0
    assert journal.replay(None) == 2
    assert journal.dead_letters() == []
    assert run_all(journal) == ["1", "2", "3"]


def test_progress_is_kept_so_a_sender_taking_over_resends_nothing_that_went_out(journal):
    journal.append("demo", items("hi"))
    [job] = journal.take("w")
    finish(journal, job, effects=[REPLY, LIKE])
    [message] = journal.take_messages("s1")
    assert journal.progress(message, Progress(1, [{"message_id": "m_1"}]))
    time.sleep(0.35)  # the sender dies before the second effect
    journal.sweep("message")
    [again] = journal.take_messages("s2")
    assert (again.done, again.results, again.attempts) == (1, ({"message_id": "m_1"},), 2)
    assert not journal.progress(message, Progress(2, []))  # the first sender lost its lock
    journal.sent([message])
    assert journal.counts()["messages"] == 1
    journal.sent([again])
    assert journal.counts()["messages"] == 0 and journal.take_messages("s3") == []


def test_messages_wait_in_line_on_a_retry_and_are_parked_with_the_reason(journal):
    journal.append("demo", items("a", "b"))
    for _ in range(2):
        [job] = journal.take("w")
        finish(journal, job, effects=[REPLY])
    [first] = journal.take_messages("s")
    journal.retry(first, "Graph API: unavailable", 0.2, in_line=False)  # messages never step out
    assert journal.take_messages("s") == []
    time.sleep(0.25)
    [again] = journal.take_messages("s")
    assert again.id == first.id
    journal.bury(again, "Graph API: (#100) not a valid user")
    [letter] = journal.dead_letters()
    assert letter["kind"] == "message" and letter["what"] == "POST me/messages"
    assert [message.id != first.id for message in journal.take_messages("s")] == [True]


def test_renew_keeps_the_lanes_of_a_slow_batch(journal):
    journal.append("demo", items("slow"))
    jobs = journal.take("w")
    for _ in range(3):
        time.sleep(0.15)
        assert journal.renew(jobs)
    assert journal.take("other") == []
    assert finish(journal, *jobs) == [True]
    assert not journal.renew(jobs)


def test_an_append_wakes_a_worker_only_when_nobody_looks_for_work(journal, wakes):
    journal.append("demo", items("1", sender="1"))
    assert [(kind, delay) for kind, _, delay in wakes] == [("event", 0.0)]
    journal.append("demo", items("2", sender="2"))
    assert len(wakes) == 1  # that wake-up is queued still
    jobs = journal.take("w", 1, token=wakes[0][1])
    assert len(wakes) == 2  # it left a ready lane behind: one more worker is woken
    finish(journal, *jobs)
    assert len(journal.take("w2", 5, token=wakes[1][1])) == 1
    journal.append("demo", items("3", sender="3"))
    assert len(wakes) == 2  # w and w2 come back for more within a moment
    assert journal.take("w", 5, leaving=True) != [] and journal.take("w", 5, leaving=True) == []
    assert journal.take("w2", 5, leaving=True) == []  # both stop looking
    journal.append("demo", items("4", sender="4"))
    assert len(wakes) == 3


def test_a_worker_busy_for_longer_than_a_short_batch_no_longer_keeps_appends_from_waking_another(journal, wakes):
    journal.append("demo", items("slow", sender="1"))
    journal.take("w", 1, token=wakes[0][1])
    journal.append("demo", items("meanwhile", sender="2"))
    assert len(wakes) == 1
    time.sleep(0.06)  # longer than a short batch: w may be stuck in a slow handler
    journal.append("demo", items("later", sender="3"))
    assert len(wakes) == 2


def test_the_sweeper_makes_a_dead_workers_lane_ready_again(journal, wakes):
    journal.append("demo", items("a"))
    journal.take("dead-worker")
    journal.sweep("event")
    assert journal.take("w", leaving=True) == []  # its lock holds until the lease runs out
    time.sleep(0.35)
    wakes.clear()
    journal.forget_wakes()  # a worker starts: the wake-ups the dead one took are gone with it
    journal.sweep("event")
    assert [kind for kind, _, _ in wakes] == ["event"]
    assert run_all(journal) == ["a"]
    journal.sweep("event")
    assert journal.redis.smembers("t:lanes:event") == set()


def test_ids_no_utf8_can_hold_are_stored_escaped_and_never_fail_a_write(journal):
    body = BUILD.message("odd", sender="1\ud800")
    body["entry"][0]["messaging"][0]["message"]["mid"] = "m2\ud800"
    delivered = parse(json.dumps(body).encode())[1]
    assert journal.append("demo", delivered) == 1
    assert journal.append("demo", delivered) == 0
    [job] = journal.take("w")
    assert read_item(job.body).data["sender"]["id"] == "1\ud800"
    assert finish(journal, job, effects=[REPLY], state='{"a":1}') == [True]
    journal.retry(journal.take_messages("s")[0], "odd \ud800 reason", 0)
    [message] = journal.take_messages("s")
    journal.bury(message, "Graph API: \udc80")
    assert journal.dead_letters()[0]["error"] == "Graph API: \\udc80"


def test_waiting_since_is_when_the_longest_ready_lane_became_ready(journal):
    assert journal.waiting_since() is None
    before = journal.now()
    journal.append("demo", items("a", sender="1"))
    time.sleep(0.05)
    journal.append("demo", items("b", sender="2"))
    since = journal.waiting_since()
    assert before <= since < before + 0.05, "the first lane's time, not the second's"
    assert sorted(run_all(journal)) == ["a", "b"]
    assert journal.waiting_since() is None


def test_burying_an_event_with_its_error_handlers_effects_queues_them_and_wakes_a_sender(journal, wakes):
    journal.append("demo", items("boom"))
    [event] = journal.take("w")
    journal.bury(event, "RuntimeError: boom", [REPLY])
    assert [letter["id"] for letter in journal.dead_letters()] == [f"event:{event.id}"]
    assert journal.counts() == {"events": 0, "messages": 1}
    assert wakes[-1][0] == "message"
    [message] = journal.take_messages("s")
    assert json.loads(message.body) == [REPLY.to_dict()] and message.lane == event.lane
