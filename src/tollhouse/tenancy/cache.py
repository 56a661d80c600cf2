"""A small TTL cache with single-flight loading, for keys and projects on the hot path.

Single flight: when 200 requests miss the same entry at once, one query runs and all await it.
``forget`` bumps a generation so a load that started before a revocation cannot put the
revoked value back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[str, tuple[V, float]] = {}
        self._loading: dict[str, asyncio.Future[V]] = {}
        self._generation = 0

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[1] < self._ttl:
            return entry[0]
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load, self._generation))
            self._loading[key] = pending
        return await asyncio.shield(pending)

    async def _load(self, key: str, load: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await load()
            if generation == self._generation:
                if len(self._entries) >= self._max:
                    self._entries.clear()
                self._entries[key] = (value, time.monotonic())
            return value
        finally:
            self._loading.pop(key, None)

    def forget(self, key: str | None = None) -> None:
        """Drop one entry (or all): the next ``get`` loads afresh."""
        self._generation += 1
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
