"""Dedupe keys: Meta redelivers until it sees a 200, so the same event can arrive more than once.

In memory, bounded, with a time-to-live of at least 36 hours by default; the durable inbox
replaces it with a persistent store behind the same ``first_time`` call.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class DedupeStore(Protocol):
    def first_time(self, key: str) -> bool:
        """Record ``key``; True when it was not seen within the time-to-live."""


class MemoryDedupe:
    """Keys in insertion order with their expiry; the oldest are dropped past ``max_keys``."""

    def __init__(self, ttl_seconds: float = 36 * 3600, max_keys: int = 200_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            self._expire(now)
            if key in self._keys:
                return False
            self._keys[key] = now + self.ttl
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._keys)

    def _expire(self, now: float) -> None:
        while self._keys:
            key, expires = next(iter(self._keys.items()))
            if expires > now:
                return
            del self._keys[key]
