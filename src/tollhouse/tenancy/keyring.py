"""Presented keys → key records, from memory on the hot path.

Lookups are cached by hash for ``cache_ttl_s`` (unknown hashes too, so random keys cannot make
every request a query); a revocation evicts at once in this process and, through Redis pub/sub,
in the others. ``last_used_at`` is collected in memory and written in one statement every
``last_used_flush_s``, never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from tollhouse.tenancy.cache import TTLCache
from tollhouse.tenancy.keys import KeyRecord, hash_key
from tollhouse.tenancy.store import TenancyStore

log = logging.getLogger(__name__)


class KeyRing:
    def __init__(self, store: TenancyStore, *, ttl_s: float, flush_s: float, open_possible: bool) -> None:
        self._store = store
        self._cache: TTLCache[KeyRecord | None] = TTLCache(ttl_s)
        self._count: TTLCache[int] = TTLCache(ttl_s)
        self._open_possible = open_possible
        self._used: dict[str, datetime] = {}
        self._flush_s = flush_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop(), name="key-last-used")

    async def lookup(self, secret: str) -> KeyRecord | None:
        key_hash = hash_key(secret)
        return await self._cache.get(key_hash, lambda: self._store.find_key(key_hash))

    def touch(self, key_id: str) -> None:
        self._used[key_id] = datetime.now(UTC)

    async def auth_required(self) -> bool:
        """Off loopback, or with an admin key, always; on loopback, once any project key exists."""
        if not self._open_possible:
            return True
        return await self._count.get("active", self._store.count_active_keys) > 0

    def forget(self, key_hash: str | None) -> None:
        self._cache.forget(key_hash)
        self._count.forget()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()

    async def flush(self) -> None:
        used, self._used = self._used, {}
        try:
            await self._store.touch_keys(used)
        except Exception:
            log.exception("could not record last_used_at for %d keys", len(used))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
