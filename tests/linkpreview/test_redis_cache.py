"""The Redis preview cache: shared by every process, expiring on Redis's clock, a miss when Redis is away."""

from __future__ import annotations

import time

import redis

from bots.inbox.redis_journal import redis_client
from linkpreview.cache import PreviewCache, RedisPreviewCache, cache_key

ITEM = {"link": "https://docs.example.com/a", "title": "A page", "privacy": "organization"}


def test_an_entry_put_by_one_process_is_read_by_another_until_it_expires(redis_url):
    writer: PreviewCache = RedisPreviewCache(redis.Redis.from_url(redis_url))
    reader = RedisPreviewCache(redis.Redis.from_url(redis_url))
    key = cache_key("docs", "viewer-1", "https://docs.example.com/a")
    assert reader.get(key) is None
    writer.put(key, ITEM, ttl=0.2)
    assert reader.get(key) == ITEM
    time.sleep(0.25)
    assert reader.get(key) is None


def test_keys_are_hashed_and_oversized_or_timeless_entries_are_not_kept(redis_url):
    client = redis.Redis.from_url(redis_url)
    cache = RedisPreviewCache(client, max_bytes=200)
    cache.put(cache_key("docs", "v", "https://docs.example.com/" + "x" * 5000), ITEM, ttl=60)
    cache.put("big", {"title": "y" * 500}, ttl=60)
    cache.put("now", ITEM, ttl=0)
    [key] = client.keys("*")
    assert len(key) == len("bots:preview:") + 64
    assert cache.get("big") is None and cache.get("now") is None


def test_redis_away_is_a_miss_not_an_error():
    cache = RedisPreviewCache(redis_client("redis://127.0.0.1:1/0"))
    cache.put("k", ITEM, ttl=60)
    assert cache.get("k") is None
