"""The cluster-mode exact cache against a real Redis (scripts/services starts one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.db_urls import redis_url
from tollhouse.cache import CachedEntry, exact_key
from tollhouse.cache.redis_store import RedisStore
from tollhouse.pricing.usage import Usage

pytestmark = pytest.mark.cluster

CHAT = "/v1/chat/completions"


def entry(project: str) -> CachedEntry:
    return CachedEntry(
        body=b'{"choices":[{"message":{"content":"hi from ' + project.encode() + b'"}}]}',
        endpoint=CHAT,
        project_id=project,
        model="gpt-4o",
        usage=Usage(input_tokens=7, output_tokens=3),
        cost_nanos=500,
    )


@pytest.fixture
async def stores() -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores sharing one Redis, as two replicas would; a unique prefix per test."""
    url = redis_url()
    prefix = f"test:{uuid.uuid4().hex}"
    first = RedisStore(Redis.from_url(url), prefix=prefix, owns_client=True, max_entry_bytes=4096)
    second = RedisStore.from_url(url, prefix=prefix)
    yield first, second
    await first.clear()
    await first.reset_stats()
    await first.close()
    await second.close()


async def test_shared_between_replicas_with_cluster_wide_stats(stores: tuple[RedisStore, RedisStore]) -> None:
    first, second = stores
    key = exact_key("alpha", "gpt-4o", CHAT, {"messages": [{"role": "user", "content": "hi"}]})
    assert await first.get(key) is None
    assert await first.put(key, entry("alpha"), ttl_s=60)
    hit = await second.get(key)
    assert hit is not None and hit.body == entry("alpha").body and hit.usage.total_tokens == 10
    stats = (await second.stats()).as_json()
    assert (stats["cache_hits"], stats["cache_misses"], stats["cached_items"]) == (1, 1, 1)
    assert stats["tokens_saved"] == 10 and stats["memory_usage_bytes"] > 0


async def test_projects_are_isolated_and_cleared_exactly(stores: tuple[RedisStore, RedisStore]) -> None:
    store, _ = stores
    request = {"messages": [{"role": "user", "content": "same question"}]}
    for project in ("a", "a:b", "b"):
        await store.put(exact_key(project, "m", CHAT, request), entry(project), ttl_s=60)
    got = await store.get(exact_key("a:b", "m", CHAT, request))
    assert got is not None and got.project_id == "a:b"
    assert await store.get(exact_key("c", "m", CHAT, request)) is None
    assert await store.clear("a") == 1
    assert await store.get(exact_key("a:b", "m", CHAT, request)) is not None
    assert await store.clear() == 2


async def test_ttl_and_entry_size(stores: tuple[RedisStore, RedisStore]) -> None:
    store, _ = stores
    key = exact_key("p", "m", CHAT, {"x": 1})
    assert await store.put(key, entry("p"), ttl_s=1)
    ttl = await store._redis.ttl(store.redis_key(key))
    assert 0 < ttl <= 1
    big = CachedEntry(b"x" * 5000, CHAT, "p", "m", Usage(), 0)
    assert not await store.put(exact_key("p", "m", CHAT, {"x": 2}), big, ttl_s=60)
