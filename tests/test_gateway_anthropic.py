"""The Anthropic surface through the official SDK (what Claude Code speaks)."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx

from tests.conftest import ANTHROPIC_KEY, ServerThread
from tests.fakes.provider import FakeProviderThread
from tests.prices import nanos

CACHED_USAGE = {
    "input_tokens": 20,
    "output_tokens": 400,
    "cache_read_input_tokens": 30000,
    "cache_creation_input_tokens": 3000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
}
CACHED_COST = nanos(
    "claude-sonnet-4-5", input=20, output=400, cache_read=30000, cache_write_5m=1000, cache_write_1h=2000
)


def client(gateway: ServerThread, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-caller", max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_message_priced_with_cache_kinds(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"text": "Hello!", "usage": CACHED_USAGE})
    raw = client(gateway).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "Hello!"
    assert message.usage.cache_read_input_tokens == 30000
    assert Decimal(raw.headers["x-tollhouse-cost-usd"]) == Decimal(CACHED_COST) / 10**9
    assert raw.headers["request-id"]  # the provider's request id passes back
    sent = fake.requests[-1]
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"]  # the SDK's own version header, forwarded
    [row] = gateway.wait_rows(1)
    assert row["cost_nanos"] == CACHED_COST
    assert (row["cache_write_5m_tokens"], row["cache_write_1h_tokens"]) == (1000, 2000)


def test_stream_with_thinking_is_relayed_unchanged_and_priced(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"text": "Answer.", "thinking": "Let me think.", "usage": CACHED_USAGE})
    with client(gateway).messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think."  # type: ignore[union-attr]
    assert final.content[0].signature  # type: ignore[union-attr]
    [row] = gateway.wait_rows(1)
    assert row["stream"] is True and row["outcome"] == "ok"
    assert row["output_tokens"] == 400
    assert row["cost_nanos"] == CACHED_COST


def test_beta_query_and_header_are_forwarded(gateway: ServerThread, fake: FakeProviderThread) -> None:
    client(gateway).beta.messages.create(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=[{"role": "user", "content": "x"}],
        betas=["context-1m-2025-08-07"],
        extra_query={"beta": "true"},  # what Claude Code sends; this SDK keeps it as a tracing qualifier
    )
    sent = fake.requests[-1]
    assert sent["query"] == {"beta": "true"}
    assert sent["headers"]["anthropic-beta"] == "context-1m-2025-08-07"


def test_count_tokens_is_forwarded_and_free(gateway: ServerThread, fake: FakeProviderThread) -> None:
    counted = client(gateway).messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert counted.input_tokens == 100
    assert fake.requests[-1]["path"] == "/v1/messages/count_tokens"
    [row] = gateway.wait_rows(1)
    assert row["route"] == "/v1/messages/count_tokens" and row["cost_nanos"] == 0


def test_long_context_request_is_billed_entirely_at_the_higher_rate(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    usage = {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000}
    fake.script({"usage": usage})
    client(gateway).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    [row] = gateway.wait_rows(1)
    assert row["cost_nanos"] == nanos(
        "claude-sonnet-4-5", input_200k=150_000, cache_read_200k=60_000, output_200k=1000
    )


def test_claude_code_with_its_own_key_routes_through_a_keyless_provider(
    start_gateway,
    fake: FakeProviderThread,  # type: ignore[no-untyped-def]
) -> None:
    gateway = start_gateway(
        providers=[{"name": "anthropic", "protocol": "anthropic", "base_url": fake.anthropic_base_url}]
    )
    oauth = anthropic.Anthropic(base_url=gateway.url, auth_token="sk-ant-oat-subscription", max_retries=0)
    oauth.messages.create(model="claude-opus-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    headers = fake.requests[-1]["headers"]
    assert headers["authorization"] == "Bearer sk-ant-oat-subscription"
    assert "x-api-key" not in headers
    response = httpx.post(
        gateway.url + "/v1/messages",
        headers={"x-api-key": "sk-ant-api-key", "anthropic-version": "2023-06-01"},
        json={"model": "claude-opus-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 200
    assert fake.requests[-1]["headers"]["x-api-key"] == "sk-ant-api-key"
    assert "authorization" not in fake.requests[-1]["headers"]


def test_anthropic_models_list_shape(gateway: ServerThread) -> None:
    response = httpx.get(gateway.url + "/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert response.json()["has_more"] is False
