"""Public list prices (USD per million tokens), typed in by hand from the providers' pricing pages.

Tests compute expected costs from these with exact fractions: an independent check on both the
bundled price table and the engine's arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

PER_MILLION = {
    "gpt-4o-mini": {"input": "0.15", "cached": "0.075", "output": "0.60"},
    "gpt-4o": {"input": "2.50", "cached": "1.25", "output": "10"},
    "text-embedding-3-small": {"input": "0.02", "output": "0"},
    "claude-sonnet-4-5": {
        "input": "3",
        "output": "15",
        "cache_read": "0.30",
        "cache_write_5m": "3.75",
        "cache_write_1h": "6",
        "input_200k": "6",
        "output_200k": "22.50",
        "cache_read_200k": "0.60",
        "cache_write_5m_200k": "7.50",
    },
    "claude-haiku-4-5": {
        "input": "1",
        "output": "5",
        "cache_read": "0.10",
        "cache_write_5m": "1.25",
        "cache_write_1h": "2",
    },
}


def usd(model: str, **tokens: int) -> Fraction:
    """Exact cost: sum of tokens x price per token."""
    table = PER_MILLION[model]
    return sum((Fraction(table[kind]) * count / 1_000_000 for kind, count in tokens.items()), Fraction(0))


def nanos(model: str, **tokens: int) -> int:
    return round(usd(model, **tokens) * 1_000_000_000)
