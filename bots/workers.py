"""Threads that take due work from a queue and run it, waking at once when work is added here.

Work added by another process (or waiting out a retry delay) is found by polling every
``poll`` seconds; work added in this process wakes a sleeping thread straight away. A wake-up
that comes while a thread is between an empty ``take()`` and its wait is not lost: every
``wake()`` moves a generation counter, and a thread only sleeps when the counter has not moved
since it began to look.

Batches: a take costs the same for one job as for fifty, so when work arrives faster than one job per
``FAST_INTERVAL`` (5 ms: 200 a second) the awake thread lets a batch's worth gather before it takes,
and no other thread is woken meanwhile. No job waits for that longer than ``gather`` seconds from
the wake-up that announced it, and gathering stops as soon as no wake-up has come for
``FAST_INTERVAL``: the end of a burst, and work that queued while the thread was busy (or the
machine stalled), are taken at once. A trickle is taken at once too, so a quiet inbox adds no delay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("bots")

LOOK_AHEAD = 0.05  # seconds an awake thread may be busy before a wake-up rouses another (CPU-bound work)
IO_LOOK_AHEAD = 0.005  # the same for work that mostly waits on the network: another thread joins sooner
GATHER = 0.02  # the longest a thread lets work gather before it takes a batch
FAST_INTERVAL = 0.005  # work arriving at shorter intervals than this (on average) is gathered into batches
BATCH = 32  # the jobs a gathering thread waits for
BATCH_SECONDS = 0.02  # the run time a batch aims at
MAX_BATCH = 64


class Workers:
    """``count`` threads that loop: ``take()`` a batch of jobs, ``run(batch)``, sleep when there is none."""

    def __init__(self, name: str, count: int, take: Callable[[], Sequence[Any]], run: Callable[[Sequence[Any]], None],
                 poll: float = 0.5, gather: float = GATHER, look_ahead: float = LOOK_AHEAD,
                 clock: Callable[[], float] = time.monotonic, settle: float = 0.0) -> None:
        self.name = name
        #: When wake-ups come from another process, which sends at most one each ``settle`` seconds: the last thread
        #: to go to sleep after work looks once more after that long, for work whose wake-up was held back.
        self.settle = settle
        self.clock = clock
        self.gather = gather
        self.look_ahead = look_ahead
        self.count = count
        self.take = take
        self.run = run
        self.poll = poll
        self._wake = threading.Condition()
        self._generation = 0
        self._sleeping = 0
        self._last_look = 0.0
        self._taken_at_generation = 0
        self._last_wake = 0.0
        self._first_wake = 0.0  # when the oldest wake-up since the last take came
        self._interval = 0.01  # seconds between wake-ups, a moving average
        self._taking = threading.Lock()  # held by the one thread gathering and taking a batch
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [threading.Thread(target=self._loop, name=f"bots-{self.name}-{i}", daemon=True)
                         for i in range(self.count)]
        for thread in self._threads:
            thread.start()

    def running(self) -> tuple[int, int]:
        """How many threads are alive, of how many this pool should run (0 of ``count`` before ``start``)."""
        return sum(thread.is_alive() for thread in self._threads), self.count

    def wake(self, n: int = 1) -> None:
        """New work is here: wake up to ``n`` sleeping threads, unless an awake thread began to look for work
        within ``look_ahead`` seconds (it looks again when its batch is done), so a stream of small deliveries
        makes batches instead of one look each, while slow handlers still get more threads."""
        now = self.clock()
        with self._wake:
            if self._generation == self._taken_at_generation:
                self._first_wake = now
            self._generation += 1
            self._interval = 0.8 * self._interval + 0.2 * min(now - self._last_wake, 1.0)
            self._last_wake = now
            if self._sleeping and (self._sleeping == len(self._threads)
                                   or now - self._last_look > self.look_ahead):
                self._wake.notify(n)

    def stop(self, timeout: float = 10.0) -> None:
        """Let the running jobs finish (up to ``timeout`` seconds) and take no more."""
        self._stopped.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout / max(1, len(self._threads)))
        self._threads = []
        self._stopped.clear()

    def _loop(self) -> None:
        settled = True
        while not self._stopped.is_set():
            if not self._taking.acquire(blocking=False):  # another thread is gathering or taking: rest until woken
                self._sleep(self._generation, busy=True)
                continue
            try:
                self._let_gather()
                generation = self._taken_at_generation = self._generation
                self._last_look = self.clock()
                jobs = self.take()
            except Exception:
                logger.exception("%s: could not read the queue; trying again shortly", self.name)
                generation, jobs = self._generation, ()
            finally:
                self._taking.release()
            if not jobs:
                self._sleep(generation, settle=not settled)
                settled = True
                continue
            settled = False
            try:
                self.run(jobs)
            except Exception:
                logger.exception("%s: a job failed outside its own error handling", self.name)

    def _let_gather(self) -> None:
        """When work comes fast, sleep while a batch gathers, a few milliseconds at a time, counting as a thread
        that looks, so no other is woken for it."""
        now = self.clock()
        while (pause := self.gather_pause(now)) > 0:
            step = min(pause, FAST_INTERVAL)
            self._last_look = now + step
            time.sleep(step)
            now = self.clock()

    def gather_pause(self, now: float) -> float:
        """Seconds to let work gather before a take: until about ``BATCH`` jobs have come since the last take,
        but never past ``gather`` seconds after the first of them, and not at all once the stream has paused
        (no wake-up for ``FAST_INTERVAL``) or for a trickle."""
        if not self.gather or self._interval >= FAST_INTERVAL or now - self._last_wake > FAST_INTERVAL:
            return 0.0
        missing = BATCH - (self._generation - self._taken_at_generation)
        if missing <= 0:
            return 0.0
        return max(0.0, min(self._first_wake + self.gather - now, missing * self._interval))

    def _sleep(self, generation: int, busy: bool = False, settle: bool = False) -> None:
        """Wait for a wake-up (or the poll) unless work came since ``generation`` (or, ``busy``, another thread is
        taking it); with ``settle``, the last thread to sleep waits only :attr:`settle` seconds."""
        with self._wake:
            if (generation != self._generation and not busy) or self._stopped.is_set():
                return
            self._sleeping += 1
            last = settle and self.settle and self._sleeping == len(self._threads)
            self._wake.wait(self.settle if last else self.poll)
            self._sleeping -= 1


class BatchSize:
    """How many jobs to take at once: as many as run in about ``BATCH_SECONDS``, learned from recent runs."""

    def __init__(self, ceiling: int = MAX_BATCH) -> None:
        self.ceiling = ceiling
        self.per_job = BATCH_SECONDS / 4

    def __call__(self) -> int:
        return max(1, min(self.ceiling, int(BATCH_SECONDS / max(self.per_job, 1e-6))))

    def ran(self, jobs: int, seconds: float) -> None:
        self.per_job = 0.8 * self.per_job + 0.2 * (seconds / max(1, jobs))
