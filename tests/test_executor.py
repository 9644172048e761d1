"""The handler pool: bounded, all-or-nothing batches, one conversation in order."""

from __future__ import annotations

import threading
import time

from bots.executor import ThreadPoolExecutor


def test_jobs_of_one_conversation_run_in_order_while_others_run_beside_them():
    pool = ThreadPoolExecutor(workers=4, limit=1000)
    done: dict[str, list[int]] = {"a": [], "b": []}

    def job(key: str, n: int):
        def run():
            time.sleep(0.001 * (n % 3))
            done[key].append(n)
        return run

    for n in range(50):
        assert pool.submit([("user:a", job("a", n)), ("user:b", job("b", n))])
    assert pool.join(10)
    assert done == {"a": list(range(50)), "b": list(range(50))}
    pool.shutdown()


def test_a_batch_that_does_not_fit_is_refused_whole():
    pool = ThreadPoolExecutor(workers=1, limit=3)
    gate = threading.Event()
    assert pool.submit([("k", gate.wait), ("k", gate.wait)])
    assert not pool.submit([("k", gate.wait), ("k", gate.wait)])
    assert pool.pending == 2
    assert pool.submit([("k", gate.wait)])
    gate.set()
    assert pool.join(5)
    assert pool.pending == 0
    pool.shutdown()


def test_a_failing_job_does_not_stop_the_worker():
    pool = ThreadPoolExecutor(workers=1, limit=10)
    ran = []
    assert pool.submit([("k", lambda: 1 / 0), ("k", lambda: ran.append(1))])
    assert pool.join(5)
    assert ran == [1]
    pool.shutdown()


def test_shutdown_finishes_queued_jobs_and_refuses_new_ones():
    pool = ThreadPoolExecutor(workers=2, limit=100)
    ran = []
    pool.submit([(str(n), lambda n=n: (time.sleep(0.01), ran.append(n))) for n in range(10)])
    pool.shutdown(timeout=5)
    assert sorted(ran) == list(range(10))
    assert not pool.submit([("k", lambda: None)])


def test_a_slow_job_does_not_hold_up_another_conversations_job_submitted_after_it():
    pool = ThreadPoolExecutor(workers=2, limit=100)
    gate, done = threading.Event(), threading.Event()
    assert pool.submit([("user:slow", gate.wait), ("user:quick", done.set)])
    try:
        assert done.wait(2)  # the slow job's thread holds it; another thread takes the quick one
    finally:
        gate.set()
    assert pool.join(5)
    pool.shutdown()


def test_a_burst_is_worked_by_one_woken_thread():
    pool = ThreadPoolExecutor(workers=4, limit=1000)
    threads: set[str] = set()
    assert pool.submit([(f"user:{n}", lambda: threads.add(threading.current_thread().name)) for n in range(200)])
    assert pool.join(5)
    assert len(threads) <= 2  # not a thread per conversation: one wake-up, one thread working through them
    pool.shutdown()
