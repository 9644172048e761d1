"""The inbox's thread pool: a stream of work is taken in batches by one thread, a trickle at once, and a
slow job does not keep new work waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bots.workers import Workers


class Queue:
    """Jobs put by the test, taken by the pool; records each take: its thread, size and how many took at once."""

    def __init__(self, run_seconds: float = 0.0) -> None:
        self.jobs: list[int] = []
        self.lock = threading.Lock()
        self.takes: list[tuple[str, int]] = []
        self.done: list[int] = []
        self.run_seconds = run_seconds
        self.taking = 0
        self.most_taking = 0

    def take(self) -> list[int]:
        with self.lock:
            self.taking += 1
            self.most_taking = max(self.most_taking, self.taking)
        time.sleep(0.0002)  # a take costs something: a transaction
        with self.lock:
            taken, self.jobs = self.jobs, []
            self.taking -= 1
            if taken:
                self.takes.append((threading.current_thread().name, len(taken)))
            return taken

    def run(self, jobs: Sequence[int]) -> None:
        time.sleep(self.run_seconds)
        with self.lock:
            self.done.extend(jobs)


def feed(queue: Queue, workers: Workers, count: int, interval: float) -> None:
    for n in range(count):
        with queue.lock:
            queue.jobs.append(n)
        workers.wake()
        time.sleep(interval)


def finished(queue: Queue, count: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with queue.lock:
            if len(queue.done) == count:
                return True
        time.sleep(0.005)
    return False


@contextmanager
def started(queue: Queue, threads: int, poll: float = 0.5) -> Iterator[Workers]:
    """A pool of ``threads`` working ``queue``, stopped when the block ends."""
    workers = Workers("test", threads, queue.take, queue.run, poll=poll)
    workers.start()
    try:
        yield workers
    finally:
        workers.stop(2)


def test_a_stream_of_work_is_taken_in_batches_by_one_thread_at_a_time():
    queue = Queue()
    with started(queue, 8) as workers:
        feed(queue, workers, 400, 0.0003)
        assert finished(queue, 400)
    assert queue.most_taking == 1
    assert len(queue.takes) <= 400 / 4, queue.takes  # batches, not a take per job


def test_a_trickle_is_taken_job_by_job_without_gathering():
    queue = Queue()
    with started(queue, 4) as workers:
        feed(queue, workers, 15, 0.02)
        assert finished(queue, 15)
    assert [size for _, size in queue.takes] == [1] * 15


def test_a_slow_job_does_not_keep_new_work_from_another_thread():
    queue = Queue(run_seconds=0.3)
    with started(queue, 2, poll=5.0) as workers:
        feed(queue, workers, 1, 0.0)
        time.sleep(0.1)  # the first job is running now, past LOOK_AHEAD
        feed(queue, workers, 1, 0.0)
        assert finished(queue, 2, timeout=0.5)  # the poll is 5 s: only a wake-up gets it done in time
    assert len({name for name, _ in queue.takes}) == 2


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def woken(clock: Clock, jobs: int, every: float, gather: float = 0.02) -> Workers:
    """A pool, not started, told of ``jobs`` jobs one every ``every`` seconds of ``clock`` (from 100.0)."""
    workers = Workers("test", 1, list, lambda jobs: None, gather=gather, clock=clock)
    for _ in range(jobs):
        clock.now += every
        workers.wake()
    return workers


def test_a_fast_stream_gathers_but_never_past_gather_seconds_after_its_first_job():
    clock = Clock()
    workers = woken(clock, 20, every=0.001)  # one job a millisecond: a stream worth batching
    first = 100.001
    assert 0 < workers.gather_pause(clock.now) <= first + 0.02 - clock.now
    assert workers.gather_pause(first + 0.02) == 0.0


def test_work_that_queued_during_a_stall_is_taken_without_gathering():
    clock = Clock()
    workers = woken(clock, 20, every=0.001)
    clock.now += 0.05  # the machine stalled: the jobs above have waited 50 ms already
    assert workers.gather_pause(clock.now) == 0.0


def test_gathering_stops_when_the_stream_pauses():
    clock = Clock()
    workers = woken(clock, 20, every=0.001, gather=0.1)
    assert workers.gather_pause(clock.now + 0.004) > 0
    assert workers.gather_pause(clock.now + 0.006) == 0.0  # no job for 6 ms: take what is there


def test_a_trickle_never_gathers():
    clock = Clock()
    workers = woken(clock, 8, every=0.02)
    assert workers.gather_pause(clock.now) == 0.0


def test_with_settle_the_last_thread_to_sleep_looks_once_more_for_work_whose_wake_up_was_held_back():
    queue = Queue()
    workers = Workers("test", 4, queue.take, queue.run, poll=30.0, settle=0.5)
    workers.start()
    try:
        with queue.lock:
            queue.jobs.append(1)
        workers.wake()
        assert finished(queue, 1)
        time.sleep(0.01)  # the pool has gone back to sleep after an empty look
        with queue.lock:
            queue.jobs.append(2)  # another process held its wake-up back

        assert finished(queue, 2, timeout=2.0), "without settle the job waits for the 30 s poll"
    finally:
        workers.stop(2)
