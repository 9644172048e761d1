"""Where handlers run, off the request: a bounded pool of threads, or inline for tests.

Jobs carry a conversation key; jobs with the same key go to the same thread, so one
conversation's events run in the order they arrived while different conversations run
side by side. The pool refuses a batch it has no room for, so the webhook can answer 503
and Workplace retries: nothing accepted is dropped on the floor.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Protocol

logger = logging.getLogger("bots")

Job = tuple[str, Callable[[], object]]
#: What a worker thread's queue holds: when the job was submitted and the job; None tells the thread to stop.
Queued = tuple[float, Callable[[], object]] | None


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
    """``workers`` threads, each with its own queue; at most ``limit`` jobs waiting or running."""

    def __init__(self, workers: int = 8, limit: int = 10_000) -> None:
        self.limit = limit
        self._queues: list[queue.SimpleQueue[Queued]] = [queue.SimpleQueue() for _ in range(workers)]
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._running: list[float | None] = [None] * workers
        self._threads = [threading.Thread(target=self._work, args=(i, q), name=f"bots-handler-{i}", daemon=True)
                         for i, q in enumerate(self._queues)]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        return self._pending

    def submit(self, jobs: Sequence[Job]) -> bool:
        with self._lock:
            if self._closed or self._pending + len(jobs) > self.limit:
                return False
            self._pending += len(jobs)
        now = time.monotonic()
        for key, job in jobs:
            self._queues[zlib.crc32(key.encode()) % len(self._queues)].put((now, job))
        return True

    def waited(self) -> float | None:
        """Seconds since the oldest job now running was submitted (a hung handler shows), None when none runs."""
        since = [started for started in self._running if started is not None]
        return max(0.0, time.monotonic() - min(since)) if since else None

    def running(self) -> tuple[int, int]:
        """How many of the pool's threads are alive, of how many it started."""
        return sum(thread.is_alive() for thread in self._threads), len(self._threads)

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
        for q in self._queues:
            q.put(None)

    def _work(self, index: int, jobs: queue.SimpleQueue[Queued]) -> None:
        while (entry := jobs.get()) is not None:
            self._running[index], job = entry
            try:
                job()
            except Exception:
                logger.exception("a handler job raised past the router")
            finally:
                self._running[index] = None
                with self._idle:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.notify_all()
