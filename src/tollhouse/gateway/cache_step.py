"""The gateway's cache step: look a call up (exact, then semantic), serve a hit, store a miss.

It sits after model resolution (the key names the *served* model) and before the budget
reservation, so a hit reserves nothing. A hit is answered in the client's own shape: the stored
body for a whole-body client, the same answer re-emitted as SSE for a streaming one. Stores
that need the network (Redis) and the semantic cache (an embedding) are written in background
tasks so the answer is never held for them; the in-memory store is written in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.cache.entry import CachedEntry, CacheStore, is_storable
from tollhouse.cache.key import CACHEABLE_ENDPOINTS, CacheDirective, directive_from_headers, exact_key
from tollhouse.cache.memory import MemoryStore
from tollhouse.cache.replay import replay_as_sse
from tollhouse.gateway.call import Call, Endpoint
from tollhouse.gateway.record import CallRecorder, Saving
from tollhouse.gateway.results import BodyResult
from tollhouse.gateway.shapes import with_seed_fields
from tollhouse.ledger.entry import Outcome
from tollhouse.pricing.cost import Cost
from tollhouse.pricing.usage import Usage

if TYPE_CHECKING:
    from tollhouse.cache.semantic.store import SemanticCache, SemanticQuery

log = logging.getLogger(__name__)
_FREE = Cost(nanos=0, unpriced=False)


@dataclass(slots=True)
class Lookup:
    """One call's cache state: its key, what the caller allows, and the hit if there was one."""

    key: str
    directive: CacheDirective
    semantic: SemanticQuery | None = None
    hit: CachedEntry | None = None
    kind: str | None = None  # "exact" | "semantic"
    similarity: float | None = None

    @property
    def digest(self) -> str:
        """The key without its project prefix: safe to show in events."""
        return self.key.rpartition(":")[2]


def caller_fingerprint(headers: dict[str, str]) -> str | None:
    """A digest of the caller's own provider credential, when it presents one.

    A provider configured without a key forwards the caller's credential, so an answer one
    credential paid for must not be served to another (or to someone with no valid
    credential at all). Tollhouse's own ``th_`` keys only name the project: not part of this.
    """
    for name in ("x-api-key", "authorization"):
        value = headers.get(name)
        if value and not value.removeprefix("Bearer ").removeprefix("bearer ").startswith("th_"):
            return hashlib.sha256(value.encode()).hexdigest()[:16]
    return None


class ResponseCache:
    def __init__(
        self,
        store: CacheStore | None,
        semantic: SemanticCache | None = None,
        *,
        ttl_s: int = 3600,
    ) -> None:
        self.store = store
        self.semantic = semantic
        self._ttl_s = ttl_s
        self._inline = isinstance(store, MemoryStore)
        self._pending: set[asyncio.Task[Any]] = set()
        self.hits = 0  # this process, since start: /health's counters
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.store is not None or self.semantic is not None

    async def lookup(self, call: Call, *, forwards_credentials: bool = False) -> Lookup | None:
        """None when the call is not cacheable (route, or the caller turned the cache off).

        ``forwards_credentials``: a provider for this model would use the caller's own key, so
        the key is scoped by it too (see ``caller_fingerprint``).
        """
        if call.endpoint.value not in CACHEABLE_ENDPOINTS:
            return None
        directive = directive_from_headers(call.headers)
        if directive.bypass:
            return None
        scope = call.model
        caller = caller_fingerprint(call.headers) if forwards_credentials else None
        if caller is not None:
            scope = f"{scope}#{caller}"
        found = Lookup(exact_key(call.project_id, scope, call.endpoint.value, call.body), directive)
        if self.semantic is not None:
            found.semantic = self.semantic.prepare(call.project_id, scope, call.endpoint.value, call.body)
        if not directive.lookup:
            return found
        if self.store is not None:
            entry = await self.store.get(found.key)
            if entry is not None:
                found.hit, found.kind = entry, "exact"
        if found.hit is None and found.semantic is not None and self.semantic is not None:
            hit = await self.semantic.lookup(found.semantic)
            if hit is not None:
                found.hit, found.kind, found.similarity = hit.entry, "semantic", hit.similarity
        if found.hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    async def remember(
        self, call: Call, found: Lookup, body: bytes, usage: Usage, cost_nanos: int, *, checked: bool = False
    ) -> None:
        """Store a fresh whole answer (``checked``: the caller knows it is a storable 200)."""
        if not found.directive.store:
            return
        endpoint = call.endpoint.value
        if not checked and not is_storable(endpoint, 200, body):
            return
        entry = CachedEntry(body, endpoint, call.project_id, call.model, usage, cost_nanos)
        ttl = found.directive.ttl_s or self._ttl_s
        if self.store is not None:
            if self._inline:
                await self.store.put(found.key, entry, ttl)
            else:
                self._background(self.store.put(found.key, entry, ttl))
        if self.semantic is not None and found.semantic is not None:
            self._background(self.semantic.store(found.semantic, entry, found.directive.ttl_s))

    def _background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not store an answer in the cache: %s", task.exception())

    async def settle(self) -> None:
        """Wait for background stores (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*tuple(self._pending), return_exceptions=True)

    async def stats(self) -> dict[str, Any]:
        """Seed 000's ``GET /api/cache/stats``: exact and semantic together.

        Every lookup reaches the exact store first, so its hits plus misses are the lookups; a
        semantic hit turns one of its misses into a hit.
        """
        exact = await self.store.stats() if self.store is not None else None
        sem = self.semantic.counters if self.semantic is not None else None
        sem_hits = sem.hits if sem is not None else 0
        hits = (exact.hits if exact else 0) + sem_hits
        misses = max(0, (exact.misses if exact else (sem.misses if sem else 0)) - (sem_hits if exact else 0))
        total = hits + misses
        body: dict[str, Any] = {
            "cache_hits": hits,
            "cache_misses": misses,
            "hit_rate": round(hits / total, 3) if total else 0.0,
            "total_requests": total,
            "memory_usage_bytes": exact.memory_bytes if exact else 0,
            "cached_items": (exact.items if exact else 0) + (len(self.semantic) if self.semantic else 0),
            "exact_hits": exact.hits if exact else 0,
            "semantic_hits": sem_hits,
            "tokens_saved": (exact.tokens_saved if exact else 0) + (sem.tokens_saved if sem else 0),
            "cost_saved_usd": (
                (exact.cost_saved_nanos if exact else 0) + (sem.cost_saved_nanos if sem else 0)
            )
            / 1e9,
            "enabled": self.store is not None,
            "semantic_enabled": self.semantic is not None,
            "backend": type(self.store).__name__ if self.store is not None else None,
        }
        if self.semantic is not None:
            body["semantic_items"] = len(self.semantic)
            body["semantic_threshold"] = self.semantic.threshold
        return body

    async def clear(self, project_id: str | None = None) -> int:
        removed = await self.store.clear(project_id) if self.store is not None else 0
        if self.semantic is not None:
            removed += self.semantic.clear(project_id)
        return removed

    async def close(self) -> None:
        for task in tuple(self._pending):
            task.cancel()
        await asyncio.gather(*tuple(self._pending), return_exceptions=True)
        if self.store is not None:
            await self.store.close()


def hit_headers(call: Call, found: Lookup, latency_ms: int) -> dict[str, str]:
    assert found.hit is not None
    headers = {
        "x-tollhouse-request-id": call.request_id,
        "x-tollhouse-provider": "cache",
        "x-tollhouse-served-model": found.hit.model,
        "x-tollhouse-requested-model": call.requested_model or call.model,
        "x-tollhouse-cached": "true",
        "x-tollhouse-cache-type": found.kind or "exact",
        "x-tollhouse-tokens-saved": str(found.hit.tokens_saved),
        "x-tollhouse-cost-saved-usd": f"{found.hit.cost_nanos / 1e9:.9f}".rstrip("0").rstrip(".") or "0",
        "x-tollhouse-cost-usd": "0",
        "x-tollhouse-latency-ms": str(latency_ms),
    }
    if found.similarity is not None:
        headers["x-tollhouse-similarity"] = f"{found.similarity:.4f}"
    if call.rule_id:
        headers["x-tollhouse-override-rule"] = call.rule_id
    return headers


def serve_hit(recorder: CallRecorder, call: Call, found: Lookup) -> BodyResult:
    """A cached answer: free, in the client's shape, recorded with what it saved."""
    entry = found.hit
    assert entry is not None
    latency = call.elapsed_ms()
    headers = hit_headers(call, found, latency)
    if call.stream:
        # The whole replay in one write: a cached answer has nothing to wait for, and one body
        # costs a fraction of a stream response (no disconnect watcher, one ASGI send).
        headers["cache-control"] = "no-cache"
        headers["content-type"] = "text/event-stream; charset=utf-8"
        events = replay_as_sse(entry, include_usage=call.client_wants_usage)
        result = BodyResult(200, b"".join(events), headers)
    elif call.endpoint is Endpoint.CHAT:
        body = with_seed_fields(orjson.loads(entry.body), call, 0.0, "0", latency, cached=True)
        result = BodyResult(200, orjson.dumps(body), headers)
    else:
        result = BodyResult(200, entry.body, headers)
    recorder.answered(
        call,
        None,
        status=200,
        outcome=Outcome.CACHE_HIT,
        usage=Usage(),
        cost=_FREE,
        served=entry.model,
        tier=None,
        latency=latency,
        ttft=latency,
        upstream_id=None,
        saving=Saving(entry.cost_nanos, entry.tokens_saved),
    )
    recorder.emit(
        "cache_hit",
        {
            "cache_key": found.digest,
            "type": found.kind,
            "similarity": found.similarity,
            "project_id": call.project_id,
            "model": entry.model,
            "route": call.endpoint.value,
            "tokens_saved": entry.tokens_saved,
            "cost_saved_usd": entry.cost_nanos / 1e9,
            "request_id": call.request_id,
        },
    )
    metrics = recorder.metrics
    if metrics is not None:
        metrics.cache_hit(found.kind or "exact")
        metrics.observe_overhead(call.endpoint.value, time.perf_counter() - call.started)
    return result


def missed(recorder: CallRecorder, call: Call, found: Lookup) -> None:
    if recorder.metrics is not None:
        recorder.metrics.cache_miss()
    recorder.emit(
        "cache_miss",
        {
            "cache_key": found.digest,
            "project_id": call.project_id,
            "model": call.model,
            "route": call.endpoint.value,
            "request_id": call.request_id,
        },
    )
