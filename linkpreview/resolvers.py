"""The generic OpenGraph resolver: fetch the page through the SSRF guard and read its metadata.

For domains whose pages describe themselves (``og:*``, ``twitter:*``, ``<title>``). The page is
fetched with the service's headers, not the viewer's, so what it shows is what the organisation
may see: the preview is marked ``organization`` and cached for every viewer. Viewers who ask
while the page is still being fetched (a link posted to a busy group) wait for that one fetch
instead of each fetching it again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future

from .fetch import FetchFailed, fetch
from .guard import FetchPolicy, FetchRefused
from .opengraph import read_metadata
from .preview import Preview
from .registry import Registration
from .request import PreviewRequest, normalise

logger = logging.getLogger("linkpreview")
#: The fetch's own cap, apart from the answer's budget: a page slower than the budget but within
#: this still arrives, and fills the cache for the next viewer.
FETCH_TIMEOUT_SECONDS = 3.0


class OpenGraphResolver:
    """Resolves a ``fetch=True`` registration: one guarded fetch, then the page's own metadata.

    ``timeout`` caps the fetch itself; the time budget of the answer is the service's, not this.
    """

    def __init__(self, policy: FetchPolicy, headers: Mapping[str, Mapping[str, str]] | None = None,
                 timeout: float = FETCH_TIMEOUT_SECONDS, max_bytes: int = 1024 * 1024) -> None:
        self.policy = policy
        self.headers = {domain.lower(): dict(values) for domain, values in (headers or {}).items()}
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._fetching: dict[tuple[str, str], Future[Preview | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, registration: Registration, request: PreviewRequest) -> Preview | None:
        """The page's preview; one fetch per page at a time, shared by everyone asking meanwhile."""
        key = (registration.label, normalise(request.link))
        with self._lock:
            underway = self._fetching.get(key)
            if underway is None:
                mine = self._fetching[key] = Future()
        if underway is not None:
            try:
                return underway.result(timeout=self.timeout + 1)
            except Exception:
                return None
        try:
            preview = self._preview(registration, request)
            mine.set_result(preview)
            return preview
        except BaseException as error:
            mine.set_exception(error)
            raise
        finally:
            with self._lock:
                del self._fetching[key]

    def _preview(self, registration: Registration, request: PreviewRequest) -> Preview | None:
        headers = {**dict(registration.headers), **self.headers.get(registration.domain, {})}
        try:
            page = fetch(request.link, self.policy, headers=headers, timeout=self.timeout, max_bytes=self.max_bytes)
        except (FetchRefused, FetchFailed) as error:
            logger.warning("%s: %s; answered no preview", registration.label, error.reason)
            return None
        meta = read_metadata(page.text, page.final_url)
        if not meta.get("title"):
            logger.info("%s has no title or og:title; answered no preview", registration.domain)
            return None
        return Preview(title=meta["title"], description=meta.get("description"), privacy="organization",
                       type=meta.get("type"), icon=meta.get("icon") or meta.get("image"),
                       canonical_link=meta.get("canonical_link"))


def headers_setting(raw: str) -> dict[str, dict[str, str]]:
    """``LINKPREVIEW_HEADERS``: JSON ``{"wiki.example.com": {"Authorization": "Bearer ..."}}``."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("expected JSON such as {\"wiki.example.com\": {\"Authorization\": \"...\"}}") from None
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in (*v, *v.values())) for v in data.values()):
        raise ValueError("expected an object of domain -> {header: value} with string values")
    return data
