"""How long-context prices apply, and the token limits they use: apart from the cost arithmetic,
so the Claude Code reports can name them without importing the price table and ``decimal``."""

from __future__ import annotations

from enum import StrEnum

LONG_CONTEXT_THRESHOLD = 200_000  # input tokens above which a model's long-context prices apply
# No request has a quadrillion tokens: a count above this is garbage (and would overflow the
# ledger's 64-bit integers once priced), read as 0 like any other unusable value.
MAX_TOKEN_COUNT = 10**15


class TierRule(StrEnum):
    """How ``*_above_200k_tokens`` prices apply."""

    ANTHROPIC = "anthropic"  # a request above 200k input tokens is billed entirely at the higher rate
    CCUSAGE = "ccusage"  # per token kind, only the tokens beyond 200k (ccusage's approximation)
