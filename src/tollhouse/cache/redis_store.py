"""The cluster-mode exact cache: answers in Redis with a TTL, hit/miss counters shared by all replicas.

Keys are ``<prefix>:e:<project>:<sha256>`` with the project percent-encoded, so ``:`` inside a
project id can never make one project's pattern match another's (``a:*`` vs ``a%3Ab:…``) and
clearing a project is one ``SCAN MATCH``. Size is bounded per entry here and overall by Redis's
own ``maxmemory`` policy (``allkeys-lru`` recommended), which Redis enforces better than we could.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis

from tollhouse.cache.entry import CachedEntry, CacheStats
from tollhouse.cache.key import project_of

_SCAN_BATCH = 1000


class RedisStore:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "tollhouse:cache",
        max_entry_bytes: int = 4 * 1024 * 1024,
        owns_client: bool = False,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._stats_key = f"{prefix}:stats"
        self._max_entry_bytes = max_entry_bytes
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        return cls(Redis.from_url(url), owns_client=True, **kwargs)

    def _project_pattern(self, project_id: str | None) -> str:
        if project_id is None:
            return f"{self._prefix}:e:*"
        return f"{self._prefix}:e:{quote(project_id, safe='')}:*"

    def redis_key(self, key: str) -> str:
        project = project_of(key)
        digest = key[len(project) + 1 :]
        return f"{self._prefix}:e:{quote(project, safe='')}:{digest}"

    async def get(self, key: str) -> CachedEntry | None:
        data = await self._redis.get(self.redis_key(key))
        entry = CachedEntry.from_bytes(data) if isinstance(data, bytes) else None
        async with self._redis.pipeline(transaction=False) as pipe:
            if entry is None:
                pipe.hincrby(self._stats_key, "misses", 1)
            else:
                pipe.hincrby(self._stats_key, "hits", 1)
                pipe.hincrby(self._stats_key, "tokens_saved", entry.tokens_saved)
                pipe.hincrby(self._stats_key, "cost_saved_nanos", entry.cost_nanos)
            await pipe.execute()
        return entry

    async def put(self, key: str, entry: CachedEntry, ttl_s: int) -> bool:
        data = entry.to_bytes()
        if len(data) > self._max_entry_bytes:
            return False
        await self._redis.set(self.redis_key(key), data, ex=ttl_s)
        return True

    async def clear(self, project_id: str | None = None) -> int:
        removed = 0
        batch: list[Any] = []
        async for name in self._redis.scan_iter(match=self._project_pattern(project_id), count=_SCAN_BATCH):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                removed += await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            removed += await self._redis.unlink(*batch)
        return removed

    async def stats(self) -> CacheStats:
        """Cluster-wide counters. ``items`` scans the key space: a management call, never the hot path."""
        raw = await self._redis.hgetall(self._stats_key)
        counters = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
        items = 0
        async for _ in self._redis.scan_iter(match=self._project_pattern(None), count=_SCAN_BATCH):
            items += 1
        memory = await self._redis.info("memory")
        return CacheStats(
            hits=counters.get("hits", 0),
            misses=counters.get("misses", 0),
            items=items,
            memory_bytes=int(memory.get("used_memory", 0)),
            tokens_saved=counters.get("tokens_saved", 0),
            cost_saved_nanos=counters.get("cost_saved_nanos", 0),
        )

    async def reset_stats(self) -> None:
        await self._redis.delete(self._stats_key)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
