"""Leases kept alive while their work runs, so a slow handler is not taken over mid-run.

A worker holds an event (or a conversation's lane) under a lease that runs out after
``INBOX_LEASE_SECONDS``, so that work of a process that died is taken up again. A handler that is
merely slow must not lose it: without renewal it would run again on another worker and, past the
last attempt, end as a dead letter without ever having failed. One thread per process renews every
running lease a few times per lease period.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger("bots")

Renew = Callable[[], object]


class Heartbeat:
    """Calls each registered ``renew`` every ``every`` seconds while its work runs."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._renewals: dict[int, Renew] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._pid = 0

    @contextmanager
    def keep(self, renew: Renew) -> Iterator[None]:
        """Renew a lease (``renew()``) for as long as the ``with`` block runs."""
        token = next(self._ids)
        with self._lock:
            self._renewals[token] = renew
            self._start()
        try:
            yield
        finally:
            with self._lock:
                del self._renewals[token]

    def _start(self) -> None:
        """Start the thread in this process (again after a fork: threads do not survive one)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._loop, name="bots-heartbeat", daemon=True).start()

    def _loop(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(self.every)
            with self._lock:
                renewals = list(self._renewals.values())
            for renew in renewals:
                try:
                    renew()
                except Exception as error:
                    logger.warning("could not renew a lease (%s); it runs out unless renewed in time",
                                   type(error).__name__)
