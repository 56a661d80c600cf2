"""The price engine against hand-typed public prices (exact fractions), not against itself."""

from __future__ import annotations

import pytest

from tests.prices import nanos
from tollhouse.pricing import TierRule, Usage, compute_cost, load_price_table
from tollhouse.pricing.usage import from_anthropic, from_openai, to_anthropic, to_openai


@pytest.fixture(scope="module")
def table():  # type: ignore[no-untyped-def]
    return load_price_table()


def test_openai_counts_cached_tokens_inside_prompt_tokens() -> None:
    usage = from_openai(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 800},
            "completion_tokens_details": {"reasoning_tokens": 300},
        }
    )
    assert usage == Usage(input_tokens=200, cache_read_tokens=800, output_tokens=500, reasoning_tokens=300)
    assert to_openai(usage)["prompt_tokens"] == 1000


def test_anthropic_reports_cache_tokens_beside_input_tokens() -> None:
    usage = from_anthropic(
        {
            "input_tokens": 5,
            "output_tokens": 7,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 30,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
        }
    )
    assert usage == Usage(5, 100, 10, 20, 7)
    assert usage.prompt_tokens == 135
    assert to_anthropic(usage)["cache_creation_input_tokens"] == 30
    # Without the split every write is a 5-minute write.
    assert from_anthropic({"input_tokens": 1, "cache_creation_input_tokens": 9}).cache_write_5m_tokens == 9


def test_garbage_usage_counts_nothing() -> None:
    assert from_openai({"prompt_tokens": -4, "completion_tokens": "x"}) == Usage()
    assert from_anthropic(None) == Usage()


@pytest.mark.parametrize(
    ("model", "usage", "expected"),
    [
        (
            "gpt-4o-mini",
            Usage(input_tokens=200, cache_read_tokens=1000, output_tokens=300),
            nanos("gpt-4o-mini", input=200, cached=1000, output=300),
        ),
        (
            "gpt-4o",
            Usage(input_tokens=1_234_567, output_tokens=89),
            nanos("gpt-4o", input=1_234_567, output=89),
        ),
        (
            "claude-haiku-4-5",
            Usage(3, 4000, 500, 700, 900),
            nanos(
                "claude-haiku-4-5",
                input=3,
                cache_read=4000,
                cache_write_5m=500,
                cache_write_1h=700,
                output=900,
            ),
        ),
        (
            "claude-sonnet-4-5",
            Usage(input_tokens=199_000, cache_read_tokens=1000, output_tokens=10),
            nanos("claude-sonnet-4-5", input=199_000, cache_read=1000, output=10),
        ),
    ],
)
def test_cost_matches_public_prices(table, model: str, usage: Usage, expected: int) -> None:  # type: ignore[no-untyped-def]
    cost = compute_cost(usage, table.lookup(model))
    assert cost.nanos == expected
    assert not cost.unpriced


def test_long_context_anthropic_rule_bills_the_whole_request_high(table) -> None:  # type: ignore[no-untyped-def]
    usage = Usage(input_tokens=150_000, cache_read_tokens=50_001, output_tokens=2000)
    cost = compute_cost(usage, table.lookup("claude-sonnet-4-5"))
    assert cost.long_context
    assert cost.nanos == nanos(
        "claude-sonnet-4-5", input_200k=150_000, cache_read_200k=50_001, output_200k=2000
    )
    at_limit = Usage(input_tokens=200_000, output_tokens=10)  # exactly 200k is not above it
    assert compute_cost(at_limit, table.lookup("claude-sonnet-4-5")).nanos == nanos(
        "claude-sonnet-4-5", input=200_000, output=10
    )


def test_long_context_ccusage_rule_is_marginal_per_kind(table) -> None:  # type: ignore[no-untyped-def]
    # ccusage's worked example: a 250k-input Sonnet 4 entry costs exactly $0.96.
    usage = Usage(input_tokens=250_000, output_tokens=4000)
    cost = compute_cost(usage, table.lookup("claude-sonnet-4-20250514"), tier_rule=TierRule.CCUSAGE)
    assert cost.nanos == 960_000_000


def test_service_tiers(table) -> None:  # type: ignore[no-untyped-def]
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    price = table.lookup("gpt-4o")
    assert compute_cost(usage, price).nanos == 12_500_000_000
    assert compute_cost(usage, price, service_tier="priority").nanos == 21_250_000_000
    assert compute_cost(usage, price, service_tier="batch").nanos == 6_250_000_000
    assert compute_cost(usage, price, service_tier="default").nanos == 12_500_000_000


def test_unknown_model_is_zero_and_flagged(table) -> None:  # type: ignore[no-untyped-def]
    assert table.lookup("made-up-model-7") is None
    cost = compute_cost(Usage(input_tokens=10), None)
    assert cost.nanos == 0 and cost.unpriced


@pytest.mark.parametrize(
    ("asked", "priced_as"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4.5", "claude-sonnet-4-5"),
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
        ("openrouter/openai/gpt-4o", "gpt-4o"),
        ("GPT-4O-MINI", "gpt-4o-mini"),
    ],
)
def test_lookup_understands_name_variants(table, asked: str, priced_as: str) -> None:  # type: ignore[no-untyped-def]
    price = table.lookup(asked)
    assert price is not None and price.name == priced_as


def test_overrides_replace_prices_and_change_the_version() -> None:
    base = load_price_table()
    local = load_price_table({"my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
    assert local.version != base.version and local.version.startswith(base.version)
    cost = compute_cost(Usage(input_tokens=1000, output_tokens=1000), local.lookup("my-model"))
    assert cost.nanos == 3_000_000


def test_money_never_passes_through_floats(table) -> None:  # type: ignore[no-untyped-def]
    # 1 token at $0.15/M is 150 nano-dollars exactly; float math gives 149.99999999999997.
    assert compute_cost(Usage(input_tokens=1), table.lookup("gpt-4o-mini")).nanos == 150
