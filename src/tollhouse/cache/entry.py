"""A cached answer and the store interface every backend implements.

An entry keeps the *non-streamed* answer in the client's wire format, so a whole-body client
gets it byte for byte and a streaming client gets it re-emitted as SSE; and it keeps the
usage and cost of the original call, so every hit can record what it saved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from tollhouse.pricing.usage import Usage

_USAGE_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True, slots=True)
class CachedEntry:
    body: bytes  # the whole answer as the client would have received it (no Tollhouse seed fields)
    endpoint: str  # "/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/embeddings"
    project_id: str
    model: str  # the served model
    usage: Usage
    cost_nanos: int  # what the original answer cost: what each hit saves
    created_at: float = field(default_factory=time.time)

    @property
    def tokens_saved(self) -> int:
        return self.usage.total_tokens

    @property
    def size(self) -> int:
        return len(self.body) + 256  # the body plus a fair share of bookkeeping

    def to_bytes(self) -> bytes:
        """One line of JSON metadata, then the body as is (never re-escaped)."""
        meta = {
            "endpoint": self.endpoint,
            "project_id": self.project_id,
            "model": self.model,
            "usage": [getattr(self.usage, name) for name in _USAGE_FIELDS],
            "cost_nanos": self.cost_nanos,
            "created_at": self.created_at,
        }
        return orjson.dumps(meta) + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedEntry:
        head, _, body = data.partition(b"\n")
        meta = orjson.loads(head)
        return cls(
            body=body,
            endpoint=meta["endpoint"],
            project_id=meta["project_id"],
            model=meta["model"],
            usage=Usage(*meta["usage"]),
            cost_nanos=int(meta["cost_nanos"]),
            created_at=float(meta["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    items: int
    memory_bytes: int
    tokens_saved: int = 0
    cost_saved_nanos: int = 0
    semantic_hits: int = 0

    def as_json(self) -> dict[str, Any]:
        """Seed 000's ``GET /api/cache/stats`` fields, plus the savings."""
        total = self.hits + self.misses
        return {
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "hit_rate": round(self.hits / total, 3) if total else 0.0,
            "total_requests": total,
            "memory_usage_bytes": self.memory_bytes,
            "cached_items": self.items,
            "semantic_hits": self.semantic_hits,
            "tokens_saved": self.tokens_saved,
            "cost_saved_usd": self.cost_saved_nanos / 1e9,
        }


class CacheStore(Protocol):
    """The exact cache's storage. ``get`` counts the hit or miss and, on a hit, the savings."""

    async def get(self, key: str) -> CachedEntry | None: ...

    async def put(self, key: str, entry: CachedEntry, ttl_s: int) -> bool: ...

    async def clear(self, project_id: str | None = None) -> int: ...

    async def stats(self) -> CacheStats: ...

    async def close(self) -> None: ...


def contains_tool_calls(endpoint: str, body: Any) -> bool:
    """Whether a whole answer asks for tool calls: such answers are never cached."""
    if not isinstance(body, dict):
        return False
    if endpoint == "/v1/messages":
        content = body.get("content")
        return isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") in ("tool_use", "server_tool_use") for b in content
        )
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict) and (message.get("tool_calls") or message.get("function_call")):
            return True
        if choice.get("finish_reason") in ("tool_calls", "function_call"):
            return True
    return False


def is_storable(endpoint: str, status: int, body: bytes) -> bool:
    """A 200 answer that is a JSON object without tool calls or an error."""
    if status != 200:
        return False
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(parsed, dict) or "error" in parsed or parsed.get("type") == "error":
        return False
    return not contains_tool_calls(endpoint, parsed)
