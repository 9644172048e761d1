"""Threads that take due work from a queue and run it, waking at once when work is added here.

Work added by another process (or waiting out a retry delay) is found by polling every
``poll`` seconds; work added in this process wakes a sleeping thread straight away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("bots")


class Workers:
    """``count`` threads that loop: ``take()`` a job, ``run(job)``, sleep when there is none."""

    def __init__(self, name: str, count: int, take: Callable[[], Any], run: Callable[[Any], None],
                 poll: float = 0.5) -> None:
        self.name = name
        self.count = count
        self.take = take
        self.run = run
        self.poll = poll
        self._wake = threading.Condition()
        self._waiting = 0
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [threading.Thread(target=self._loop, name=f"bots-{self.name}-{i}", daemon=True)
                         for i in range(self.count)]
        for thread in self._threads:
            thread.start()

    def wake(self, n: int = 1) -> None:
        """New work is here: wake up to ``n`` sleeping threads."""
        if self._waiting:
            with self._wake:
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
        while not self._stopped.is_set():
            try:
                job = self.take()
            except Exception:
                logger.exception("%s: could not read the queue; trying again shortly", self.name)
                job = None
            if job is None:
                with self._wake:
                    self._waiting += 1
                    self._wake.wait(self.poll)
                    self._waiting -= 1
                continue
            try:
                self.run(job)
            except Exception:
                logger.exception("%s: a job failed outside its own error handling", self.name)
