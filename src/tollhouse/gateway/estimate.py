"""Rough token estimates, for answers no provider counted (a stream cut short, count_tokens on an
OpenAI-protocol provider). Billing uses the provider's own usage whenever it exists."""

from __future__ import annotations

from typing import Any

_CHARS_PER_TOKEN = 4


def text_of(value: Any) -> int:
    """Characters of text anywhere in a request body (messages, system, prompt, input, tools)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(text_of(item) for item in value)
    if isinstance(value, dict):
        return sum(text_of(v) for k, v in value.items() if k not in ("model", "type", "role", "id"))
    return 0


def prompt_tokens(body: dict[str, Any]) -> int:
    chars = sum(text_of(body.get(key)) for key in ("messages", "system", "prompt", "input", "tools"))
    return max(1, -(-chars // _CHARS_PER_TOKEN))


def tokens_in_text(chars: int) -> int:
    return -(-chars // _CHARS_PER_TOKEN) if chars > 0 else 0
