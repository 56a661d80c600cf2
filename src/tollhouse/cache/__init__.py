"""The response cache: exact (memory or Redis) and, opt-in, semantic (``tollhouse.cache.semantic``).

Nothing here imports numpy: the semantic cache lives in its own subpackage behind the
``semantic`` extra.
"""

from tollhouse.cache.accumulate import StreamAccumulator
from tollhouse.cache.entry import CachedEntry, CacheStats, CacheStore, contains_tool_calls, is_storable
from tollhouse.cache.key import (
    CACHEABLE_ENDPOINTS,
    CacheDirective,
    canonical_request,
    directive_from_headers,
    exact_key,
    project_of,
)
from tollhouse.cache.memory import MemoryStore
from tollhouse.cache.replay import replay_as_sse

__all__ = [
    "CACHEABLE_ENDPOINTS",
    "CacheDirective",
    "CacheStats",
    "CacheStore",
    "CachedEntry",
    "MemoryStore",
    "StreamAccumulator",
    "canonical_request",
    "contains_tool_calls",
    "directive_from_headers",
    "exact_key",
    "is_storable",
    "project_of",
    "replay_as_sse",
]
