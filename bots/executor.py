"""Where handlers run, off the request: a bounded pool of threads, or inline for tests.

Jobs carry a conversation key; a conversation's jobs run one at a time in the order they
arrived while different conversations run side by side. A woken thread goes on from job to
job while any waits, so a burst costs one wake-up, not one per job.
The pool refuses a batch it has no room for, so the webhook can answer 503 and Workplace
retries: nothing accepted is dropped on the floor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from .workers import Workers

logger = logging.getLogger("bots")

Job = tuple[str, Callable[[], object]]


class Executor(Protocol):
    def submit(self, jobs: Sequence[Job]) -> bool:
        """Take every job or none; False when there is no room."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking jobs and finish the queued ones within ``timeout`` seconds."""


class InlineExecutor:
    """Runs each job at once in the caller's thread: for tests and the test kit."""

    def submit(self, jobs: Sequence[Job]) -> bool:
        for _, job in jobs:
            job()
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        return None


class ThreadPoolExecutor:
    """``workers`` threads (:class:`~bots.workers.Workers`, so a burst wakes one thread, not one per job); at most
    ``limit`` jobs waiting or running, and one job of a conversation at a time."""

    def __init__(self, workers: int = 8, limit: int = 10_000) -> None:
        self.limit = limit
        self._lanes: dict[str, deque[Callable[[], object]]] = {}  # each conversation's jobs not yet started
        self._ready: deque[str] = deque()  # conversations with a job waiting and none running
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._started: dict[int, float] = {}  # when each busy thread's job began
        self._workers = Workers("handler", workers, self._take, self._run, poll=1.0)
        self._workers.start()

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        return self._pending

    def submit(self, jobs: Sequence[Job]) -> bool:
        with self._lock:
            if self._closed or self._pending + len(jobs) > self.limit:
                return False
            self._pending += len(jobs)
            for key, job in jobs:
                lane = self._lanes.get(key)
                if lane is None:
                    self._lanes[key] = lane = deque()
                    self._ready.append(key)
                lane.append(job)
        self._workers.wake(len(jobs))
        return True

    def waited(self) -> float | None:
        """Seconds since the oldest job now running began (a hung handler shows), None when none runs."""
        since = list(self._started.values())
        return max(0.0, time.monotonic() - min(since)) if since else None

    def running(self) -> tuple[int, int]:
        """How many of the pool's threads are alive, of how many it started."""
        return self._workers.running()

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until no job is pending; False on time-out."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._closed = True
        if not self.join(timeout):
            logger.warning("stopped with %d handler jobs unfinished", self._pending)
        self._workers.stop(1.0)

    def _take(self) -> list[tuple[str, Callable[[], object]]]:
        """The next job that may run (its conversation has none running), if any."""
        job = self._next()
        return [] if job is None else [job]

    def _next(self) -> tuple[str, Callable[[], object]] | None:
        with self._lock:
            if not self._ready:
                return None
            key = self._ready.popleft()
            return key, self._lanes[key].popleft()

    def _run(self, jobs: Sequence[tuple[str, Callable[[], object]]]) -> None:
        """Run the job taken, then the next waiting one, until none waits: a woken thread works through a burst
        without a wake-up per job, while jobs it has not started stay where another thread can take them."""
        ident = threading.get_ident()
        job: tuple[str, Callable[[], object]] | None = jobs[0]
        while job is not None:
            key, work = job
            self._started[ident] = time.monotonic()
            try:
                work()
            except Exception:
                logger.exception("a handler job raised past the router")
            finally:
                del self._started[ident]
                self._done(key)
            job = self._next()

    def _done(self, key: str) -> None:
        """A job of ``key`` finished: its conversation's next job may run, or the conversation is forgotten."""
        with self._idle:
            if self._lanes[key]:
                self._ready.append(key)
            else:
                del self._lanes[key]
            self._pending -= 1
            if not self._pending:
                self._idle.notify_all()
