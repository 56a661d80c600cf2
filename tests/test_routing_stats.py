"""Override statistics in seed 000's shape, with savings priced from the shared table."""

from __future__ import annotations

from tollhouse.pricing.cost import compute_cost
from tollhouse.pricing.table import load_price_table
from tollhouse.pricing.usage import Usage
from tollhouse.routing import OverrideStats, dollars_text


def test_savings_are_requested_price_minus_paid() -> None:
    prices = load_price_table()
    stats = OverrideStats(prices, enabled=True, rule_count=1)
    usage = Usage(input_tokens=100_000, output_tokens=100_000)
    paid = compute_cost(usage, prices.lookup("claude-haiku-4-5")).nanos
    sonnet = compute_cost(usage, prices.lookup("claude-sonnet-4-5-20250929")).nanos
    saved = stats.record("claude-sonnet-4.5-20250929", "claude-haiku-4-5-20251001", usage, paid)
    assert saved == sonnet - paid
    assert saved == 1_200_000_000  # $0.30 + $1.50 at sonnet minus $0.10 + $0.50 at haiku
    stats.record("claude-sonnet-4.5-20250929", "claude-haiku-4-5-20251001", usage, paid)
    body = stats.as_json()
    assert body["total_overrides"] == 2
    assert body["overrides_enabled"] is True
    row = body["overrides_by_model"]["claude-sonnet-4.5-20250929"]
    assert row == {
        "overridden_to": "claude-haiku-4-5-20251001",
        "count": 2,
        "percentage": 100.0,
        "cost_saved": "$2.40",
        "cost_saved_usd": 2.4,
        "targets": {"claude-haiku-4-5-20251001": 2},
        "unpriced": 0,
    }
    assert body["total_cost_saved"] == "$2.40"


def test_percentages_and_unpriced_models() -> None:
    stats = OverrideStats(load_price_table(), enabled=True, rule_count=2)
    usage = Usage(input_tokens=10, output_tokens=10)
    for _ in range(3):
        stats.record("claude-opus-4-5", "claude-haiku-4-5", usage, 60)
    assert stats.record("my-private-model", "claude-haiku-4-5", usage, 60) == 0
    body = stats.as_json()
    assert body["overrides_by_model"]["claude-opus-4-5"]["percentage"] == 75.0
    assert body["overrides_by_model"]["my-private-model"]["unpriced"] == 1
    assert list(body["overrides_by_model"]) == ["claude-opus-4-5", "my-private-model"]


def test_disabled_shape_matches_seed_000() -> None:
    body = OverrideStats(load_price_table(), enabled=False, rule_count=0).as_json()
    assert body["total_overrides"] == 0
    assert body["overrides_enabled"] is False
    assert body["message"] == "Model overrides are not enabled"


def test_dollars_text() -> None:
    assert dollars_text(18_500_000_000) == "$18.50"
    assert dollars_text(0) == "$0.00"
    assert dollars_text(-1_204_000_000) == "-$1.20"
    assert dollars_text(-1) == "$0.00"
