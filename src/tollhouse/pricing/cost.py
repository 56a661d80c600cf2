"""Cost of a usage under a price: Decimal arithmetic, rounded once to integer nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from tollhouse.pricing.tiers import LONG_CONTEXT_THRESHOLD as LONG_CONTEXT_THRESHOLD
from tollhouse.pricing.tiers import TierRule as TierRule  # re-exported: its home before tiers.py

if TYPE_CHECKING:
    from tollhouse.pricing.table import ModelPrice
    from tollhouse.pricing.usage import Usage

NANOS_PER_USD = Decimal(1_000_000_000)


def usd_to_nanos(usd: float) -> int:
    """A dollar amount as written (a float read from JSON) in nano-dollars, exactly: through its
    decimal text, not its binary value."""
    return int((Decimal(str(usd)) * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


_ONE_HOUR_WRITE_MULTIPLIER = Decimal(2)  # Anthropic: a 1-hour cache write costs 2x base input.

_SERVICE_TIERS = {"batch": "batches", "batches": "batches", "priority": "priority", "flex": "flex"}


@dataclass(frozen=True, slots=True)
class Cost:
    nanos: int
    unpriced: bool
    long_context: bool = False

    @property
    def usd(self) -> float:
        """For the JSON edge only."""
        return self.nanos / 1e9

    @property
    def usd_text(self) -> str:
        """Exact decimal text, for headers."""
        return str((Decimal(self.nanos) / NANOS_PER_USD).normalize()) if self.nanos else "0"


UNPRICED = Cost(nanos=0, unpriced=True)


def compute_cost(
    usage: Usage,
    price: ModelPrice | None,
    *,
    tier_rule: TierRule = TierRule.ANTHROPIC,
    service_tier: str | None = None,
) -> Cost:
    """Price ``usage``. No price → zero, flagged unpriced; the caller records and lists it."""
    if price is None:
        return UNPRICED
    base = _base_rates(price, service_tier)
    long_context = price.has_long_context_tier and usage.prompt_tokens > LONG_CONTEXT_THRESHOLD
    high = _high_rates(price, base)
    kinds = (
        ("input", usage.input_tokens),
        ("cache_read", usage.cache_read_tokens),
        ("cache_write_5m", usage.cache_write_5m_tokens),
        ("cache_write_1h", usage.cache_write_1h_tokens),
        ("output", usage.output_tokens),
    )
    total = Decimal(0)
    for kind, tokens in kinds:
        if not tokens:
            continue
        if tier_rule is TierRule.CCUSAGE and price.has_long_context_tier:
            below = min(tokens, LONG_CONTEXT_THRESHOLD)
            total += below * base[kind] + (tokens - below) * high[kind]
        elif long_context:
            total += tokens * high[kind]
        else:
            total += tokens * base[kind]
    nanos = int((total * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))
    return Cost(nanos=nanos, unpriced=False, long_context=long_context)


def _base_rates(price: ModelPrice, service_tier: str | None) -> dict[str, Decimal]:
    rates = {
        "input": price.input,
        "output": price.output,
        # A table that lists no cache price charges cached tokens as plain input (never a guess
        # below list price); the 1-hour write defaults to Anthropic's documented 2x input.
        "cache_read": price.cache_read if price.cache_read is not None else price.input,
        "cache_write_5m": price.cache_write_5m if price.cache_write_5m is not None else price.input,
        "cache_write_1h": (
            price.cache_write_1h
            if price.cache_write_1h is not None
            else price.input * _ONE_HOUR_WRITE_MULTIPLIER
        ),
    }
    tier = _SERVICE_TIERS.get((service_tier or "").lower())
    if tier and tier in price.tiers:
        rates.update(price.tiers[tier])
    return rates


def _high_rates(price: ModelPrice, base: dict[str, Decimal]) -> dict[str, Decimal]:
    return {
        "input": price.input_above_200k if price.input_above_200k is not None else base["input"],
        "output": price.output_above_200k if price.output_above_200k is not None else base["output"],
        "cache_read": (
            price.cache_read_above_200k if price.cache_read_above_200k is not None else base["cache_read"]
        ),
        "cache_write_5m": (
            price.cache_write_5m_above_200k
            if price.cache_write_5m_above_200k is not None
            else base["cache_write_5m"]
        ),
        "cache_write_1h": (
            price.cache_write_1h_above_200k
            if price.cache_write_1h_above_200k is not None
            else base["cache_write_1h"]
        ),
    }
