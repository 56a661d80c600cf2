"""ccusage's pricing quirks, for side-by-side checks only (``--tier-rule ccusage``).

ccusage 20 prices from its embedded LiteLLM snapshot with a few differences from the shared
engine's reading of the same table, reproduced here so its numbers can be matched exactly:

* a small built-in table overrides some Claude models (same list prices as LiteLLM today);
* a missing cache price defaults to 1.25x input (write) and 0.1x input (read);
* a 1-hour cache write always costs 2x input (2x the >200k input price above 200k tokens),
  whatever the table lists;
* ``*_above_200k_tokens`` prices apply per token kind to the tokens beyond 200k only
  (``TierRule.CCUSAGE`` in the shared engine).

None of this is used for the ledger's own cost, which follows Anthropic's rules.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType

from tollhouse.pricing import Cost, ModelPrice, PriceTable, TierRule, Usage, compute_cost

_DATE_SUFFIX = re.compile(r"-\d{8}$")
_M = Decimal("0.000001")  # USD per token, for prices quoted per million


def _builtin(
    input_: str, output: str, write: str, read: str, tiers: tuple[str, str, str, str] | None = None
) -> ModelPrice:
    high = [Decimal(v) * _M for v in tiers] if tiers else [None, None, None, None]
    return ModelPrice(
        name="ccusage-builtin",
        provider="anthropic",
        mode="chat",
        input=Decimal(input_) * _M,
        output=Decimal(output) * _M,
        cache_write_5m=Decimal(write) * _M,
        cache_read=Decimal(read) * _M,
        input_above_200k=high[0],
        output_above_200k=high[1],
        cache_write_5m_above_200k=high[2],
        cache_read_above_200k=high[3],
    )


_OPUS_45 = _builtin("5", "25", "6.25", "0.5")
_OPUS_4 = _builtin("15", "75", "18.75", "1.5")
_SONNET = _builtin("3", "15", "3.75", "0.3")
_HAIKU_35 = _builtin("0.8", "4", "1", "0.08")

# ccusage's ``put_builtin_pricing`` (Claude models only), USD per million tokens.
BUILTIN_PRICES = MappingProxyType(
    {
        "claude-opus-4-5": _OPUS_45,
        "claude-opus-4-6": _OPUS_45,
        "claude-opus-4-7": _OPUS_45,
        "claude-opus-4-8": _OPUS_45,
        "claude-haiku-4-5": _builtin("1", "5", "1.25", "0.1"),
        "claude-opus-4": _OPUS_4,
        "claude-sonnet-4-6": _SONNET,
        "claude-sonnet-4": _builtin("3", "15", "3.75", "0.3", ("6", "22.5", "7.5", "0.6")),
        "claude-3-5-haiku": _HAIKU_35,
        "claude-3-5-haiku-20241022": _HAIKU_35,
        "claude-3-opus": _OPUS_4,
        "claude-3-sonnet": _SONNET,
        "claude-3-haiku": _builtin("0.25", "1.25", "0.3", "0.03"),
    }
)


class CcusagePricer:
    """Prices usage the way ccusage 20.0.24 does; memoised per model name."""

    def __init__(self, table: PriceTable) -> None:
        self._table = table
        self._memo: dict[str, ModelPrice | None] = {}

    def price(self, model: str) -> ModelPrice | None:
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = self._find(model)
        adjusted = _ccusage_view(found) if found is not None else None
        if len(self._memo) < 10_000:
            self._memo[model] = adjusted
        return adjusted

    def cost(self, model: str, usage: Usage) -> Cost:
        return compute_cost(usage, self.price(model), tier_rule=TierRule.CCUSAGE)

    def _find(self, model: str) -> ModelPrice | None:
        if model in BUILTIN_PRICES:
            return BUILTIN_PRICES[model]
        exact = self._table.lookup(model)
        if exact is not None and exact.name.lower() == model.lower():
            return exact
        undated = _DATE_SUFFIX.sub("", model)
        if undated in BUILTIN_PRICES:
            return BUILTIN_PRICES[undated]
        return exact


def _ccusage_view(price: ModelPrice) -> ModelPrice:
    two = Decimal(2)
    return replace(
        price,
        cache_read=price.cache_read if price.cache_read is not None else price.input * Decimal("0.1"),
        cache_write_5m=(
            price.cache_write_5m if price.cache_write_5m is not None else price.input * Decimal("1.25")
        ),
        cache_write_1h=price.input * two,
        cache_write_1h_above_200k=(
            price.input_above_200k * two if price.input_above_200k is not None else None
        ),
        tiers={},
    )
