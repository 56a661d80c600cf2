"""The OpenAI surface through the official SDK: answered as OpenAI would, priced and recorded."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import orjson
import pytest

from tests.conftest import OPENAI_KEY, ServerThread
from tests.fakes.provider import FakeProviderThread
from tests.prices import nanos


def client(gateway: ServerThread, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-caller-key", max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_chat_completion_is_answered_priced_and_recorded(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script(
        {
            "text": "Hi there",
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1000},
            },
        }
    )
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}], temperature=0.2
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hi there"
    expected = nanos("gpt-4o-mini", input=200, cached=1000, output=300)
    assert Decimal(raw.headers["x-tollhouse-cost-usd"]) == Decimal(expected) / 10**9
    assert raw.headers["x-tollhouse-provider"] == "fake-openai"
    assert raw.headers["x-tollhouse-cached"] == "false"
    assert int(raw.headers["x-tollhouse-latency-ms"]) >= 0
    request_id = raw.headers["x-tollhouse-request-id"]
    assert request_id.startswith("req_")
    body = orjson.loads(raw.http_response.content)
    assert body["cost"] == pytest.approx(expected / 1e9)
    assert body["project_id"] == "default"
    assert body["content"] == "Hi there"

    sent = fake.requests[-1]
    assert sent["body"]["temperature"] == 0.2  # passed through untouched
    assert (
        sent["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    )  # the provider's key, never the caller's

    [row] = gateway.wait_rows(1)
    assert row["request_id"] == request_id
    assert row["source"] == "gateway"
    assert row["route"] == "/v1/chat/completions"
    assert row["provider"] == "fake-openai"
    assert row["model_requested"] == "gpt-4o-mini"
    assert row["model_served"] == "gpt-4o-mini"
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (200, 1000, 300)
    assert row["cost_nanos"] == expected
    assert row["status_code"] == 200 and row["outcome"] == "ok" and row["stream"] is False
    assert row["price_version"].startswith("litellm-")
    assert row["upstream_request_id"]


def test_stream_without_include_usage_hides_the_usage_chunk(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"text": "one two three", "usage": {"prompt_tokens": 50, "completion_tokens": 3}})
    chunks = list(
        client(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "count"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "the usage-only chunk the client did not ask for is hidden"
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    [row] = gateway.wait_rows(1)
    assert (row["input_tokens"], row["output_tokens"]) == (50, 3)
    assert row["cost_nanos"] == nanos("gpt-4o-mini", input=50, output=3)
    assert row["stream"] is True and row["outcome"] == "ok"
    assert row["ttft_ms"] is not None


def test_stream_with_include_usage_passes_the_usage_chunk(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    chunks = list(
        client(gateway).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 10
    assert chunks[-1].choices == []


def test_legacy_completions_and_embeddings(gateway: ServerThread, fake: FakeProviderThread) -> None:
    sdk = client(gateway)
    fake.script({"text": "there was a kingdom", "usage": {"prompt_tokens": 4, "completion_tokens": 4}})
    completion = sdk.completions.create(model="gpt-4o-mini", prompt="Once upon a time", max_tokens=20)
    assert completion.choices[0].text == "there was a kingdom"
    fake.script({"usage": {"prompt_tokens": 1000, "total_tokens": 1000}})
    embedded = sdk.embeddings.create(model="text-embedding-3-small", input=["first", "second"])
    assert len(embedded.data) == 2 and embedded.data[0].embedding
    stream = sdk.completions.create(model="gpt-4o-mini", prompt="Once", stream=True)
    assert "".join(chunk.choices[0].text for chunk in stream if chunk.choices)
    rows = gateway.wait_rows(3)
    by_route = {row["route"]: row for row in rows}
    assert by_route["/v1/embeddings"]["cost_nanos"] == nanos("text-embedding-3-small", input=1000)
    assert by_route["/v1/completions"]["outcome"] == "ok"


def test_models_lists_configured_names(start_gateway, fake: FakeProviderThread) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        providers=[
            {"name": "p", "protocol": "openai", "base_url": fake.openai_base_url, "models": ["gpt-4o", "o3*"]}
        ]
    )
    models = client(gateway).models.list()
    assert [(m.id, m.owned_by) for m in models.data] == [("gpt-4o", "p")]


def test_project_from_body_or_header_is_recorded_and_not_forwarded(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "project_id": "demo"},
    )
    assert response.status_code == 200
    assert response.json()["project_id"] == "demo"
    assert "project_id" not in fake.requests[-1]["body"]
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-tollhouse-project": "other"},
    )
    assert response.json()["project_id"] == "other"
    rows = gateway.wait_rows(2)
    assert sorted(row["project_id"] for row in rows) == ["demo", "other"]


def test_provider_without_key_forwards_the_callers_credentials(
    start_gateway, fake: FakeProviderThread
) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        providers=[
            {"name": "byok", "protocol": "openai", "base_url": fake.openai_base_url, "models": ["gpt-*"]}
        ]
    )
    client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer sk-caller-key"


def test_openrouter_style_prefix_routes_to_the_prefixed_provider(
    start_gateway, fake: FakeProviderThread
) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        providers=[
            {
                "name": "openrouter",
                "protocol": "openai",
                "base_url": fake.openai_base_url,
                "api_key": "k",
                "models": [],
            },
        ]
    )
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="openrouter/openai/gpt-4o", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-tollhouse-provider"] == "openrouter"
    assert fake.requests[-1]["body"]["model"] == "openai/gpt-4o"
    [row] = gateway.wait_rows(1)
    assert row["model_requested"] == "openrouter/openai/gpt-4o"
    assert row["cost_nanos"] > 0  # priced as openai/gpt-4o


def test_unknown_model_is_priced_zero_and_flagged(start_gateway, fake: FakeProviderThread) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        providers=[{"name": "local", "protocol": "openai", "base_url": fake.openai_base_url, "models": ["*"]}]
    )
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="my-private-model", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-tollhouse-cost-usd"] == "0"
    [row] = gateway.wait_rows(1)
    assert row["unpriced"] is True and row["cost_nanos"] == 0
    usage = httpx.get(gateway.url + "/v1/usage", params={"period": "day"}).json()
    assert usage["unpriced_models"] == ["my-private-model"]
