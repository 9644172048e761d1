"""Link previews as Workplace shows them: the integration that registered the link's domain is
asked for each viewer (signed ``link``/``preview`` delivery answered in the response body);
``organization`` answers are reused for everyone, ``inaccessible`` shows nothing.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from .activity import COMMUNITY_ID
from .integrations import Integration, Integrations
from .webhooks import Courier

LINK = re.compile(r"https?://[^\s<>\"']+")
CACHE_SECONDS = 60.0


def links_in(text: str) -> list[str]:
    """The http(s) links in a message, in order, without trailing punctuation."""
    return [found.rstrip(".,;:!?)") for found in LINK.findall(text or "")]


class Previews:
    """Asks integrations for previews, per viewer, with a short cache."""

    def __init__(self, integrations: Integrations, courier: Courier, ttl: float = CACHE_SECONDS) -> None:
        self.integrations = integrations
        self.courier = courier
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def owner(self, link: str) -> Integration | None:
        """The enabled integration with the link-preview permission whose domain covers ``link``; the most
        specific domain wins."""
        host = urlsplit(link).hostname or ""
        owners = [i for i in self.integrations.all() if i.enabled and i.has("Link previews") and i.covers(host)]
        return max(owners, key=lambda i: i.covers(host), default=None)

    def for_viewer(self, link: str, viewer_id: str) -> dict[str, Any] | None:
        """The preview ``viewer_id`` sees for ``link``, or None (no owner, no answer, or inaccessible)."""
        for key in ((viewer_id, link), ("*", link)):
            cached = self._cached(key)
            if cached is not None:
                return cached[1]
        integration = self.owner(link)
        if integration is None:
            return None
        entry = {"time": int(time.time()), "changes": [{"field": "preview", "value": {
            "community": {"id": COMMUNITY_ID}, "user": {"id": viewer_id}, "link": link}}]}
        answer = self.courier.ask(integration, "link", "preview", entry) or {}
        data = answer.get("data")
        item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
        preview = None
        if item and item.get("privacy") != "inaccessible":
            preview = {**item, "integration": integration.name}
        shared = item is not None and item.get("privacy") == "organization"
        with self._lock:
            self._cache[("*" if shared else viewer_id, link)] = (time.monotonic() + self.ttl, preview)
        return preview

    def collection(self, viewer_id: str) -> list[dict[str, Any]]:
        """The documents the composer's share extension offers ``viewer_id``: every integration subscribed
        to ``link``/``collection`` is asked, and each answers a ``data`` list for this viewer."""
        entry = {"time": int(time.time()), "changes": [{"field": "collection", "value": {
            "community": {"id": COMMUNITY_ID}, "user": {"id": viewer_id}}}]}
        found = []
        for integration in self.integrations.all():
            data = (self.courier.ask(integration, "link", "collection", entry) or {}).get("data")
            for item in data if isinstance(data, list) else []:
                if isinstance(item, dict) and isinstance(item.get("link"), str) and links_in(item["link"]):
                    found.append({"title": str(item.get("title") or item["link"]), "link": item["link"],
                                  "integration": integration.name})
        return found

    def forget(self) -> None:
        """Drop every cached answer (an integration's settings changed)."""
        with self._lock:
            self._cache.clear()

    def _cached(self, key: tuple[str, str]) -> tuple[float, dict[str, Any] | None] | None:
        with self._lock:
            found = self._cache.get(key)
            if found and found[0] < time.monotonic():
                del self._cache[key]
                return None
            return found
