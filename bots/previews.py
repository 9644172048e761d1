"""Join the bots to ``linkpreview``: one registry of every bot's domains, and the synchronous
answer to a ``link`` delivery."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis import Redis

from linkpreview import NO_PREVIEW, ConflictError, PreviewService, Registry
from linkpreview.cache import MemoryPreviewCache, PreviewCache, RedisPreviewCache
from linkpreview.preview import Answer
from linkpreview.service import Fetcher

from . import metrics
from .bot import Bot
from .config import ServerSettings
from .envelope import Item, load_event
from .errors import ConfigError
from .events import LinkRequest


def build(bots: Iterable[Bot], settings: ServerSettings, env: Mapping[str, str],
          redis: Redis | None = None) -> PreviewService:
    """The preview service for ``bots``, caching in ``redis`` when given (``REDIS_URL``) so every process
    shares one cache; conflicting registrations and bad settings stop start-up."""
    registry = Registry()
    collections = {}
    for bot in bots:
        for registration in bot.link_previews:
            try:
                registry.add(registration)
            except ConflictError as error:
                raise ConfigError("handlers", str(error)) from None
        if bot.link_collection_handler is not None:
            collections[bot.name] = bot.link_collection_handler
    cache: PreviewCache = RedisPreviewCache(redis) if redis is not None else MemoryPreviewCache(
        settings.linkpreview_cache_max)
    return PreviewService(registry, cache=cache,
                          budget=settings.linkpreview_budget_ms / 1000, ttl=settings.linkpreview_cache_ttl_seconds,
                          collections=collections, fetcher=_fetcher(registry, settings, env),
                          on_answer=metrics.preview)


def answer(service: PreviewService, bot_name: str, item: Item) -> Answer:
    """The response body for a ``link`` delivery: the preview or collection for its viewer."""
    event = load_event(item)
    if not isinstance(event, LinkRequest):
        return NO_PREVIEW
    respond = service.collection if event.field == "collection" else service.preview
    return respond(bot_name, event.link, event.viewer_id, event.community_id, event)


def _fetcher(registry: Registry, settings: ServerSettings, env: Mapping[str, str]) -> Fetcher | None:
    if not any(registration.fetch for registration in registry.registrations):
        return None
    from linkpreview.guard import FetchPolicy
    from linkpreview.resolvers import OpenGraphResolver, headers_setting

    try:
        policy = FetchPolicy.from_setting(settings.linkpreview_allow)
    except ValueError as error:
        raise ConfigError("LINKPREVIEW_ALLOW", str(error)) from None
    try:
        headers = headers_setting(env.get("LINKPREVIEW_HEADERS", ""))
    except ValueError as error:
        raise ConfigError("LINKPREVIEW_HEADERS", str(error)) from None
    return OpenGraphResolver(policy, headers)
