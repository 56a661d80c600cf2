"""The pieces behind seed 003's API: secret masking, the forecast, front matter, the event bus."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tollhouse.claude_code.assets import split_front_matter
from tollhouse.claude_code.config_inspect import looks_secret, mask_text, mask_tree, merge
from tollhouse.claude_code.sessions import SessionQuery, parse_since, prompt_text
from tollhouse.claude_code.stats import linear_forecast
from tollhouse.errors import InvalidParameter
from tollhouse.events import EventBroadcaster


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("ANTHROPIC_API_KEY", "anything-at-all", True),
        ("GITHUB_TOKEN", "abc12345", True),
        ("DB_PASSWORD", "hunter2", True),
        ("Authorization", "Bearer abc", True),
        ("X", "sk-ant-api03-abcdefghij", True),
        ("X", "ghp_abcdefghijklmnopqrstuvwxyz012345", True),
        ("X", "Qm9vdGxlZ2dlcnMgYXJlIGZ1bjEyMzQ1Njc4OTA", True),  # long, random, mixed case and digits
        ("GITHUB_TOKEN", "${GITHUB_TOKEN}", False),  # a reference, not the value
        ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/gcp/creds.json", False),
        ("DEBUG", "1", False),
        ("MODEL", "claude-sonnet-4-5-20250929", False),
        ("SESSION", "aaaaaaaa-0000-4000-8000-000000000001", False),  # uuids are lower-case hex
        ("COMMIT", "0123456789abcdef0123456789abcdef01234567", False),
    ],
)
def test_looks_secret(key: str, value: str, secret: bool) -> None:
    assert looks_secret(key, value) is secret


def test_mask_tree_keeps_structure_and_non_strings() -> None:
    masked = mask_tree(
        {"env": {"API_KEY": "sk-abcdefghijklmnop", "N": 3, "TOKENS": 5}, "list": ["ghp_" + "a" * 36]}
    )
    assert masked == {"env": {"API_KEY": "sk-a…(masked)", "N": 3, "TOKENS": 5}, "list": ["ghp_…(masked)"]}
    assert mask_tree({"DB_PASSWORD": "correct-horse-battery"}) == {"DB_PASSWORD": "…(masked)"}


def test_mask_text_in_scripts() -> None:
    text = "export OPENAI_API_KEY=sk-proj-abcdefghijklmnop\nTOKEN='s3cr3t-value'\necho $HOME\nKEY=$OTHER\n"
    masked = mask_text(text)
    assert "abcdefghijklmnop" not in masked and "s3cr3t-value" not in masked
    assert "echo $HOME" in masked and "KEY=$OTHER" in masked
    assert mask_text("curl -H 'Authorization: Bearer abcdefghijklmnopqrst'") == (
        "curl -H 'Authorization: Bearer …(masked)'"
    )


def test_merge_concatenates_lists_and_merges_objects() -> None:
    assert merge({"a": {"x": 1, "y": [1]}, "b": 1}, {"a": {"y": [1, 2]}, "b": 2}) == {
        "a": {"x": 1, "y": [1, 2]},
        "b": 2,
    }


def test_forecast_of_a_straight_line_is_certain() -> None:
    forecast = linear_forecast([1.0 + i for i in range(30)], days=3)
    assert forecast.daily == pytest.approx([31.0, 32.0, 33.0])
    assert forecast.r2 == pytest.approx(1.0) and forecast.low == pytest.approx(forecast.high)


def test_forecast_of_noise_is_uncertain_and_never_negative() -> None:
    history = [5.0, 0.0, 9.0, 1.0, 7.0, 0.0, 8.0, 2.0, 0.0, 0.0]
    forecast = linear_forecast(history, days=30)
    assert 0 <= forecast.r2 < 0.5
    assert all(v >= 0 for v in forecast.daily)
    assert forecast.low <= forecast.total <= forecast.high and forecast.high > forecast.total
    assert linear_forecast([], days=2).daily == [0.0, 0.0]
    assert linear_forecast([0.0] * 30).r2 == 0.0


def test_front_matter() -> None:
    assert split_front_matter("---\na: 1\nb: [x]\n---\nbody\n") == ({"a": 1, "b": ["x"]}, "body\n", None)
    assert split_front_matter("just text") == ({}, "just text", None)
    front, body, error = split_front_matter("---\ndate: 2025-01-02\n---\n")
    assert front == {"date": "2025-01-02"} and body == "" and error is None
    assert split_front_matter("---\na: 1\n")[2] == "front matter is not closed by ---"
    front, _, error = split_front_matter("---\n- a\n---\nx")
    assert front == {} and error == "front matter is not a mapping"


def test_prompt_text_skips_wrappers_and_tool_results() -> None:
    assert prompt_text("  hello ") == "hello"
    assert prompt_text([{"type": "text", "text": "hi"}, {"type": "image"}]) == "hi"
    assert prompt_text("<command-name>/clear</command-name>") is None
    assert prompt_text([{"type": "tool_result", "content": "x"}]) is None


def test_session_query_parsing() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    query = SessionQuery.parse({"since": "2w", "sort": "cost", "order": "asc", "search": " Auth "}, now)
    assert query.since == now - timedelta(weeks=2) and query.sort == "cost" and not query.descending
    assert query.search == "auth" and (query.page, query.limit) == (0, 50)
    assert parse_since("2026-01-01T12:00:00+02:00", now) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidParameter) as caught:
        SessionQuery.parse({"limit": "500"}, now)
    assert caught.value.details == {"param": "limit", "value": "500", "expected": "an integer from 1 to 100"}


async def test_broadcaster_fans_out_and_drops_the_oldest_for_slow_subscribers() -> None:
    bus = EventBroadcaster(queue_size=2)
    with bus.subscribe() as everything, bus.subscribe(frozenset({"b"})) as only_b:
        assert bus.subscriber_count == 2
        for kind in ("a", "b", "a"):
            bus.publish(kind, {"kind": kind})
        assert [(await everything.get(0.1)).type for _ in range(2)] == ["b", "a"]  # type: ignore[union-attr]
        assert everything.dropped == 1
        assert (await only_b.get(0.1)).data == {"kind": "b"}  # type: ignore[union-attr]
        assert await only_b.get(0.01) is None
    assert bus.subscriber_count == 0
    bus.publish("a", {})  # nobody listening: fine


async def test_subscription_iterates() -> None:
    bus = EventBroadcaster()
    with bus.subscribe() as subscription:
        bus.publish("x", {"n": 1})
        received = await asyncio.wait_for(anext(aiter(subscription)), 1)
    assert received.type == "x" and received.data == {"n": 1}
