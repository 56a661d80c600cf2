"""The embedded-mode exact cache: an LRU bounded by entries and bytes, with per-entry TTL.

Every operation is O(1) (an ``OrderedDict`` plus a per-project key set), and everything runs
on the event loop thread, so no lock is needed. Expired entries are dropped when touched and
pushed out by LRU order otherwise.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tollhouse.cache.entry import CachedEntry, CacheStats
from tollhouse.cache.key import project_of


@dataclass(slots=True)
class _Slot:
    entry: CachedEntry
    expires_at: float
    size: int


class MemoryStore:
    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_entry_bytes: int = 4 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_entry_bytes = min(max_entry_bytes, max_bytes)
        self._clock = clock
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._by_project: dict[str, set[str]] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.tokens_saved = 0
        self.cost_saved_nanos = 0

    def __len__(self) -> int:
        return len(self._slots)

    async def get(self, key: str) -> CachedEntry | None:
        slot = self._slots.get(key)
        if slot is not None and slot.expires_at <= self._clock():
            self._drop(key)
            slot = None
        if slot is None:
            self.misses += 1
            return None
        self._slots.move_to_end(key)
        self.hits += 1
        self.tokens_saved += slot.entry.tokens_saved
        self.cost_saved_nanos += slot.entry.cost_nanos
        return slot.entry

    async def put(self, key: str, entry: CachedEntry, ttl_s: int) -> bool:
        """Store; False when the entry alone is over the per-entry bound."""
        size = entry.size
        if size > self._max_entry_bytes:
            return False
        if key in self._slots:
            self._drop(key)
        self._slots[key] = _Slot(entry, self._clock() + ttl_s, size)
        self._by_project.setdefault(project_of(key), set()).add(key)
        self._bytes += size
        while len(self._slots) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._slots)))
        return True

    async def clear(self, project_id: str | None = None) -> int:
        if project_id is None:
            count = len(self._slots)
            self._slots.clear()
            self._by_project.clear()
            self._bytes = 0
            return count
        keys = self._by_project.pop(project_id, set())
        for key in keys:
            slot = self._slots.pop(key, None)
            if slot is not None:
                self._bytes -= slot.size
        return len(keys)

    async def stats(self) -> CacheStats:
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            items=len(self._slots),
            memory_bytes=self._bytes,
            tokens_saved=self.tokens_saved,
            cost_saved_nanos=self.cost_saved_nanos,
        )

    async def close(self) -> None:
        return None

    def _drop(self, key: str) -> None:
        slot = self._slots.pop(key)
        self._bytes -= slot.size
        project = project_of(key)
        keys = self._by_project.get(project)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_project[project]
