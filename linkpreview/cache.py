"""A bounded cache of preview answers with a time-to-live: in process memory, or in Redis shared by every process.

Keys are per viewer and link; a preview marked ``organization`` is stored under a key every
viewer shares, since anyone in the company may see it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from .preview import PreviewItem, is_item
from .request import normalise

EVERYONE = "*"
logger = logging.getLogger("linkpreview")


class PreviewCache(Protocol):
    def get(self, key: str) -> PreviewItem | None:
        """The cached item, or None when absent or expired."""

    def put(self, key: str, item: PreviewItem, ttl: float) -> None:
        """Keep ``item`` for ``ttl`` seconds."""


class RedisClient(Protocol):
    """What :class:`RedisPreviewCache` asks of its client: ``redis.Redis`` has it."""

    def get(self, name: str) -> object:
        """The value stored under ``name`` (bytes), or None."""

    def set(self, name: str, value: str, *, px: int) -> object:
        """Store ``value`` under ``name`` for ``px`` milliseconds."""


def cache_key(owner: str, viewer: str | None, link: str) -> str:
    """The key for ``viewer``'s preview of ``link`` from the bot ``owner`` (``EVERYONE`` for
    organisation-wide previews). Keyed by bot too: two bots may cover one link (``example.com`` and
    ``docs.example.com``), and each must answer with its own preview."""
    return f"{owner}|{viewer or '?'}|{normalise(link)}"


def lookup_keys(owner: str, viewer: str | None, link: str) -> tuple[str, str]:
    """The keys a preview of ``link`` for ``viewer`` may be under, organisation-wide first; the link
    is normalised once for both, as every preview request looks them up."""
    normal = normalise(link)
    return f"{owner}|{EVERYONE}|{normal}", f"{owner}|{viewer or '?'}|{normal}"


class MemoryPreviewCache:
    """Least-recently-used entries past ``max_items`` go first; expired ones are dropped when read."""

    def __init__(self, max_items: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_items = max_items
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, PreviewItem]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> PreviewItem | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            expires, item = found
            if expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item

    def put(self, key: str, item: PreviewItem, ttl: float) -> None:
        with self._lock:
            self._items[key] = (self._clock() + ttl, item)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class RedisPreviewCache:
    """Entries in Redis with Redis's own expiry, shared by every web process (``REDIS_URL``).

    Keys are hashed, so a long link makes a short key; an answer over ``max_bytes`` is not kept; a Redis
    failure is a miss (the preview is resolved again), never an error in the 3 s answer.
    """

    def __init__(self, client: RedisClient, prefix: str = "bots:preview:", max_bytes: int = 64 * 1024) -> None:
        self.redis = client
        self.prefix = prefix
        self.max_bytes = max_bytes

    def get(self, key: str) -> PreviewItem | None:
        try:
            raw = self.redis.get(self._key(key))
        except Exception as error:
            logger.warning("preview cache: Redis read failed (%s); resolving afresh", type(error).__name__)
            return None
        if not raw or not isinstance(raw, (str, bytes, bytearray)):
            return None
        item = json.loads(raw)
        return item if is_item(item) else None

    def put(self, key: str, item: PreviewItem, ttl: float) -> None:
        raw = json.dumps(item, separators=(",", ":"))
        if ttl <= 0 or len(raw) > self.max_bytes:
            return
        try:
            self.redis.set(self._key(key), raw, px=max(1, int(ttl * 1000)))
        except Exception as error:
            logger.warning("preview cache: Redis write failed (%s)", type(error).__name__)

    def _key(self, key: str) -> str:
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()
