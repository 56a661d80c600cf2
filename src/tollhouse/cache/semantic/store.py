"""The semantic cache: reuse an answer to a conversation that means the same, within one scope.

Opt-in per project. A lookup embeds the whole conversation (in a worker thread: a few
milliseconds of numpy that must not stall the event loop), searches only the request's scope,
and takes the best entry at or above the threshold that the meaning guard does not veto.
Answers with tool calls are never stored. Entries live in this process (embedded mode); in
cluster mode each replica keeps its own.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tollhouse.cache.config import SemanticCacheSettings
from tollhouse.cache.entry import CachedEntry, contains_tool_calls
from tollhouse.cache.semantic.conversation import conversation_text, semantic_scope
from tollhouse.cache.semantic.embedder import Embedder, Vector
from tollhouse.cache.semantic.guard import differs_in_meaning
from tollhouse.cache.semantic.index import VectorIndex


@dataclass(slots=True)
class SemanticQuery:
    """One request's scope and text; the vector is computed once and reused by ``store``."""

    project_id: str
    scope: str
    text: str
    vector: Vector | None = None
    embedded: bool = False


@dataclass(frozen=True, slots=True)
class SemanticHit:
    entry: CachedEntry
    similarity: float
    entry_id: int


@dataclass(slots=True)
class _Record:
    scope: str
    project_id: str
    text: str
    entry: CachedEntry
    expires_at: float


@dataclass(slots=True)
class SemanticCounters:
    hits: int = 0
    misses: int = 0
    vetoed: int = 0
    tokens_saved: int = 0
    cost_saved_nanos: int = 0
    embed_ms_total: float = field(default=0.0)


class SemanticCache:
    def __init__(
        self,
        embedder: Embedder,
        *,
        threshold: float = 0.95,
        ttl_s: int = 3600,
        max_entries: int = 100_000,
        guard: bool = True,
        projects: tuple[str, ...] = ("*",),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._embedder = embedder
        self.threshold = threshold
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._guard = guard
        self._project_patterns = tuple(re.compile(fnmatch.translate(p)) for p in projects)
        self._clock = clock
        self._index = VectorIndex(embedder.dim)
        self._records: OrderedDict[int, _Record] = OrderedDict()
        self._ids = itertools.count(1)
        self.counters = SemanticCounters()

    @classmethod
    def from_settings(
        cls, settings: SemanticCacheSettings, embedder: Embedder | None = None
    ) -> SemanticCache:
        """Loads the local model unless one is given; ImportError without the ``semantic`` extra."""
        if embedder is None:
            from tollhouse.cache.semantic.embedder import MiniLMEmbedder

            embedder = MiniLMEmbedder(settings.model_dir)
        return cls(
            embedder,
            threshold=settings.threshold,
            ttl_s=settings.ttl_s,
            max_entries=settings.max_entries,
            guard=settings.guard,
            projects=settings.projects,
        )

    def __len__(self) -> int:
        return len(self._records)

    def enabled_for(self, project_id: str) -> bool:
        return any(p.fullmatch(project_id) for p in self._project_patterns)

    def prepare(
        self, project_id: str, served_model: str, endpoint: str, body: dict[str, Any]
    ) -> SemanticQuery | None:
        """The query for this request, or None when the project did not opt in or it is not eligible."""
        if not self.enabled_for(project_id):
            return None
        text = conversation_text(endpoint, body)
        if text is None:
            return None
        return SemanticQuery(project_id, semantic_scope(project_id, served_model, endpoint, body), text)

    async def lookup(self, query: SemanticQuery) -> SemanticHit | None:
        candidates = await asyncio.to_thread(self._embed_and_search, query)
        now = self._clock()
        for entry_id, similarity in candidates:
            record = self._records.get(entry_id)
            if record is None or record.scope != query.scope:
                continue
            if record.expires_at <= now:
                self._drop(entry_id)
                continue
            if self._guard and differs_in_meaning(query.text, record.text):
                self.counters.vetoed += 1
                continue
            self._records.move_to_end(entry_id)
            self.counters.hits += 1
            self.counters.tokens_saved += record.entry.tokens_saved
            self.counters.cost_saved_nanos += record.entry.cost_nanos
            return SemanticHit(record.entry, similarity, entry_id)
        self.counters.misses += 1
        return None

    async def store(self, query: SemanticQuery, entry: CachedEntry, ttl_s: int | None = None) -> bool:
        """Store a fresh answer; False for tool-call answers and texts too long to embed."""
        try:
            parsed = orjson.loads(entry.body)
        except orjson.JSONDecodeError:
            return False
        if contains_tool_calls(entry.endpoint, parsed):
            return False
        if not query.embedded:
            await asyncio.to_thread(self._embed, query)
        if query.vector is None:
            return False
        entry_id = next(self._ids)
        expires = self._clock() + (ttl_s or self._ttl_s)
        self._records[entry_id] = _Record(query.scope, query.project_id, query.text, entry, expires)
        self._index.add(query.scope, entry_id, query.vector)
        while len(self._records) > self._max_entries:
            self._drop(next(iter(self._records)))
        return True

    def clear(self, project_id: str | None = None) -> int:
        doomed = [i for i, r in self._records.items() if project_id is None or r.project_id == project_id]
        for entry_id in doomed:
            self._drop(entry_id)
        return len(doomed)

    def _embed(self, query: SemanticQuery) -> None:
        started = time.perf_counter()
        query.vector = self._embedder.embed(query.text)
        query.embedded = True
        self.counters.embed_ms_total += (time.perf_counter() - started) * 1000

    def _embed_and_search(self, query: SemanticQuery) -> list[tuple[int, float]]:
        if not query.embedded:
            self._embed(query)
        if query.vector is None:
            return []
        return self._index.search(query.scope, query.vector, self.threshold)

    def _drop(self, entry_id: int) -> None:
        record = self._records.pop(entry_id, None)
        if record is not None:
            self._index.remove(record.scope, entry_id)
