"""Override counts and savings for ``GET /api/overrides/stats`` (seed 000's shape).

Savings are measured, not guessed: the same usage priced at the requested model's price
minus what the served model actually cost. A requested model the price table does not know
saves nothing and is counted as unpriced rather than estimated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tollhouse.pricing.cost import NANOS_PER_USD, TierRule, compute_cost
from tollhouse.pricing.table import PriceTable
from tollhouse.pricing.usage import Usage

_CENT = Decimal("0.01")


def dollars_text(nanos: int) -> str:
    """``18500000000`` → ``"$18.50"``; negative savings (a dearer target) keep their sign."""
    amount = (Decimal(abs(nanos)) / NANOS_PER_USD).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return f"{'-' if nanos < 0 and amount else ''}${amount}"


@dataclass(slots=True)
class _Tally:
    count: int = 0
    saved_nanos: int = 0
    unpriced: int = 0
    targets: Counter[str] = field(default_factory=Counter)


class OverrideStats:
    """In-process accumulator; the gateway feeds it once per settled overridden call."""

    def __init__(
        self,
        prices: PriceTable,
        *,
        enabled: bool,
        rule_count: int,
        tier_rule: TierRule = TierRule.ANTHROPIC,
    ) -> None:
        self._prices = prices
        self._tier_rule = tier_rule
        self.enabled = enabled
        self.rule_count = rule_count
        self._by_model: dict[str, _Tally] = {}
        self.total = 0
        self.saved_nanos = 0

    def would_have_cost(self, model: str, usage: Usage, service_tier: str | None = None) -> int | None:
        price = self._prices.lookup(model)
        if price is None:
            return None
        return compute_cost(usage, price, tier_rule=self._tier_rule, service_tier=service_tier).nanos

    def record(
        self, requested: str, served: str, usage: Usage, paid_nanos: int, service_tier: str | None = None
    ) -> int:
        """Count one override; returns the nano-dollars it saved (0 when the requested model is unpriced)."""
        tally = self._by_model.get(requested)
        if tally is None:
            tally = self._by_model[requested] = _Tally()
        tally.count += 1
        tally.targets[served] += 1
        self.total += 1
        baseline = self.would_have_cost(requested, usage, service_tier)
        if baseline is None:
            tally.unpriced += 1
            return 0
        saved = baseline - paid_nanos
        tally.saved_nanos += saved
        self.saved_nanos += saved
        return saved

    def as_json(self) -> dict[str, Any]:
        if not self.enabled:
            return {
                "total_overrides": self.total,
                "overrides_enabled": False,
                "override_rules": self.rule_count,
                "message": "Model overrides are not enabled",
            }
        by_model: dict[str, Any] = {}
        for requested, tally in sorted(self._by_model.items(), key=lambda kv: -kv[1].count):
            by_model[requested] = {
                "overridden_to": tally.targets.most_common(1)[0][0],
                "count": tally.count,
                "percentage": round(100 * tally.count / self.total, 1) if self.total else 0,
                "cost_saved": dollars_text(tally.saved_nanos),
                "cost_saved_usd": tally.saved_nanos / 1e9,
                "targets": dict(tally.targets),
                "unpriced": tally.unpriced,
            }
        return {
            "total_overrides": self.total,
            "overrides_enabled": True,
            "override_rules": self.rule_count,
            "overrides_by_model": by_model,
            "total_cost_saved": dollars_text(self.saved_nanos),
            "total_cost_saved_usd": self.saved_nanos / 1e9,
        }
