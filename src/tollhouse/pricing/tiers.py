"""How long-context prices apply: apart from the cost arithmetic, so the Claude Code reports can
name a rule without importing the price table and ``decimal`` (a warm report prices nothing)."""

from __future__ import annotations

from enum import StrEnum


class TierRule(StrEnum):
    """How ``*_above_200k_tokens`` prices apply."""

    ANTHROPIC = "anthropic"  # a request above 200k input tokens is billed entirely at the higher rate
    CCUSAGE = "ccusage"  # per token kind, only the tokens beyond 200k (ccusage's approximation)
