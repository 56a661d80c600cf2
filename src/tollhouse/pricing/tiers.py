"""How long-context prices apply, and the token limits they use: apart from the cost arithmetic,
so the Claude Code reports can name them without importing the price table and ``decimal``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

LONG_CONTEXT_THRESHOLD = 200_000  # input tokens above which a model's long-context prices apply
# No request has a quadrillion tokens: a count above this is garbage (and would overflow the
# ledger's 64-bit integers once priced), read as 0 like any other unusable value.
MAX_TOKEN_COUNT = 10**15


def token_count(value: Any) -> int:
    """A reported token count as pricing reads it: a positive integer, else 0."""
    return int(value) if isinstance(value, int) and 0 < value <= MAX_TOKEN_COUNT else 0


def cache_writes(total: int, one_hour: int, five_minutes: int) -> tuple[int, int]:
    """(5-minute, 1-hour) cache writes from Anthropic's total and its split. The total is trusted:
    whatever the split does not account for is a 5-minute write."""
    if one_hour + five_minutes != total and total:
        five_minutes = max(total - one_hour, 0)
    return five_minutes, one_hour


class TierRule(StrEnum):
    """How ``*_above_200k_tokens`` prices apply."""

    ANTHROPIC = "anthropic"  # a request above 200k input tokens is billed entirely at the higher rate
    CCUSAGE = "ccusage"  # per token kind, only the tokens beyond 200k (ccusage's approximation)
