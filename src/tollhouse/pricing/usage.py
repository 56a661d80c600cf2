"""Usage normalised across providers into the five kinds that are priced differently.

OpenAI counts cached tokens *inside* ``prompt_tokens``; Anthropic reports cache reads and
writes *beside* ``input_tokens``. Both become: uncached input, cache read, cache write (5 min),
cache write (1 h), output (reasoning included; reasoning is also kept apart for display).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollhouse.pricing.tiers import cache_writes
from tollhouse.pricing.tiers import token_count as _int


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every input token, cached or not: what long-context tiers are measured against."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


def from_openai(usage: dict[str, Any] | None) -> Usage:
    """OpenAI chat/completions/embeddings usage (also the Responses API's field names)."""
    if not usage:
        return Usage()
    prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    cached = min(_int(prompt_details.get("cached_tokens")), prompt) if isinstance(prompt_details, dict) else 0
    # Some compatible servers (DeepSeek, Groq) put cache counts at the top level.
    if not cached:
        cached = min(_int(usage.get("prompt_cache_hit_tokens")), prompt)
    reasoning = (
        _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    )
    return Usage(
        input_tokens=prompt - cached,
        cache_read_tokens=cached,
        output_tokens=completion,
        reasoning_tokens=min(reasoning, completion),
    )


def from_anthropic(usage: dict[str, Any] | None) -> Usage:
    """Anthropic Messages usage; ``cache_creation`` splits writes into 5-minute and 1-hour."""
    if not usage:
        return Usage()
    writes = _int(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    write_5m, write_1h = writes, 0
    if isinstance(split, dict):
        write_5m, write_1h = cache_writes(
            writes, _int(split.get("ephemeral_1h_input_tokens")), _int(split.get("ephemeral_5m_input_tokens"))
        )
    return Usage(
        input_tokens=_int(usage.get("input_tokens")),
        cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=_int(usage.get("output_tokens")),
    )


def to_openai(usage: Usage) -> dict[str, Any]:
    """OpenAI's shape for a usage, for answers translated from another protocol."""
    prompt = usage.prompt_tokens
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def to_anthropic(usage: Usage) -> dict[str, Any]:
    """Anthropic's shape for a usage, for answers translated from another protocol."""
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
