"""Answer a link-preview or collection request within its time budget, never with a 5xx.

A resolver that raises, returns something invalid or runs past the budget gives the "no
preview" answer and a log line; a late result still fills the cache for the next viewer.
Each answer is reported to ``on_answer`` with where it came from (``cache``, ``resolver``,
``budget``: ran past it, ``unregistered``, ``collection``) and how long it took.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TypeVar
from urllib.parse import urlsplit

from .cache import EVERYONE, MemoryPreviewCache, PreviewCache, cache_key, lookup_keys
from .preview import NO_PREVIEW, Answer, Preview, PreviewError, PreviewItem, answer
from .registry import Registration, Registry
from .request import PreviewRequest

logger = logging.getLogger("linkpreview")
T = TypeVar("T")
#: A ``@bot.link_collection`` handler: the documents to offer for a share-extension request.
CollectionResolver = Callable[[PreviewRequest], Iterable[Preview] | None]
#: Resolves a ``fetch=True`` registration (the OpenGraph resolver).
Fetcher = Callable[[Registration, PreviewRequest], Preview | None]


class PreviewService:
    """Finds the registration for a link, consults the cache, runs the resolver within the budget."""

    def __init__(self, registry: Registry, *, cache: PreviewCache | None = None, budget: float = 3.0,
                 ttl: float = 300.0, workers: int = 8,
                 collections: dict[str, CollectionResolver] | None = None,
                 fetcher: Fetcher | None = None,
                 on_answer: Callable[[str, str, float], None] | None = None) -> None:
        self.registry = registry
        self.cache = cache or MemoryPreviewCache()
        self.budget = budget
        self.ttl = ttl
        self.collections = collections or {}
        self.fetcher = fetcher
        self.on_answer = on_answer
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="linkpreview")

    def preview(self, bot: str, link: str | None, viewer: str | None, community: str | None = None,
                event: object = None) -> Answer:
        """The response body for ``viewer``'s preview of ``link``."""
        started = time.perf_counter()
        found = self.registry.find(link or "", bot)
        if found is None or link is None:  # no registration covers a missing link
            logger.warning("%s: no link-preview registration covers %s; answered no preview", bot, _domain(link))
            return self._answered(bot, "unregistered", started, NO_PREVIEW)
        registration, matched = found
        shared, own = lookup_keys(registration.bot, viewer, link)
        cached = self.cache.get(shared) or self.cache.get(own)
        if cached is not None:
            return self._answered(bot, "cache", started, answer([cached]))
        regex = matched if isinstance(matched, re.Match) else None
        request = PreviewRequest(link, viewer, community, regex.groupdict() if regex else {}, regex, event)
        item, source = self._within_budget(registration.label, lambda: self._resolve(registration, request))
        return self._answered(bot, source, started, answer([item]) if item else NO_PREVIEW)

    def collection(self, bot: str, link: str | None, viewer: str | None, community: str | None = None,
                   event: object = None) -> Answer:
        """The response body for a share-extension request: the documents to offer, or none."""
        started = time.perf_counter()
        resolver = self.collections.get(bot)
        if resolver is None:
            logger.info("%s: no @bot.link_collection handler; answered an empty collection", bot)
            return self._answered(bot, "unregistered", started, NO_PREVIEW)
        request = PreviewRequest(link or "", viewer, community, {}, None, event)
        items, source = self._within_budget(f"{bot}: collection", lambda: self._collect(bot, resolver, request))
        return self._answered(bot, "collection" if source == "resolver" else source, started, answer(items or []))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _within_budget(self, label: str, work: Callable[[], T]) -> tuple[T | None, str]:
        """What ``work`` returned and ``resolver``, or None and ``budget`` when it ran past the budget."""
        future = self._pool.submit(work)
        try:
            return future.result(timeout=self.budget), "resolver"
        except concurrent.futures.TimeoutError:
            logger.warning("%s ran past the %.1f s budget; answered no preview (a late result is still cached)",
                           label, self.budget)
            return None, "budget"

    def _answered(self, bot: str, source: str, started: float, body: Answer) -> Answer:
        """``body``, once ``on_answer`` has been told where it came from and how long it took."""
        if self.on_answer is not None:
            self.on_answer(bot, source, time.perf_counter() - started)
        return body

    def _resolve(self, registration: Registration, request: PreviewRequest) -> PreviewItem | None:
        try:
            result: object
            if registration.fetch:
                if self.fetcher is None:
                    raise RuntimeError("no OpenGraph fetcher is configured")
                result = self.fetcher(registration, request)
            elif registration.resolver is None:
                raise RuntimeError("the registration has neither a resolver nor fetch=True")
            else:
                result = registration.resolver(request)
        except Exception:
            logger.exception("%s raised on a preview request; answered no preview", registration.label)
            return None
        if result is None:
            return None
        item = _item(registration.label, result, request.link)
        if item is not None:
            viewer = EVERYONE if item["privacy"] == "organization" else request.viewer_id
            self.cache.put(cache_key(registration.bot, viewer, request.link), item, self.ttl)
        return item

    def _collect(self, bot: str, resolver: CollectionResolver, request: PreviewRequest) -> list[PreviewItem]:
        try:
            results: Iterable[object] = resolver(request) or []
        except Exception:
            logger.exception("%s: link_collection raised; answered an empty collection", bot)
            return []
        items = [_item(f"{bot}: collection", result, getattr(result, "link", None) or "") for result in results]
        return [item for item in items if item is not None]


def _item(label: str, result: object, link: str) -> PreviewItem | None:
    if not isinstance(result, Preview):
        logger.error("%s returned %s, expected a Preview (or None); answered no preview", label, type(result).__name__)
        return None
    try:
        return result.to_dict(link)
    except PreviewError as error:
        logger.error("%s returned an invalid preview (%s); answered no preview", label, error)
        return None


def _domain(link: str | None) -> str:
    try:
        return urlsplit(link or "").hostname or repr(link)
    except ValueError:
        return repr(link)
