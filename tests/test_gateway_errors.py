"""Every way a gateway call can fail: a clear error in each SDK's shape, one ledger row, no crash."""

from __future__ import annotations

import socket
import time

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ServerThread, StartGateway, provider_table
from tests.fakes.provider import FakeProviderThread

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def oai(gateway: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


def ant(gateway: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', 400, "missing_field"),
        (b'{"model": 42, "messages": []}', 400, "invalid_parameter"),
        (b'{"model": "gpt-4o-mini"}', 400, "missing_field"),
        (b'{"model": "gpt-4o-mini", "messages": [], "project_id": "bad id!"}', 400, "invalid_parameter"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    gateway: ServerThread, body: bytes, status: int, code: str
) -> None:
    response = httpx.post(gateway.url + "/v1/chat/completions", content=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]
    assert response.json()["request_id"] == response.headers["x-tollhouse-request-id"]


def test_bad_requests_raise_the_sdks_own_exceptions(gateway: ServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gateway).chat.completions.create(model="gpt-4o-mini", messages="hi")  # type: ignore[arg-type]
    assert caught.value.code == "missing_field"
    with pytest.raises(anthropic.BadRequestError) as anthropic_caught:
        ant(gateway).messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert anthropic_caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "no-such-model" in anthropic_caught.value.message


def test_unknown_model_is_invalid_model_and_recorded(gateway: ServerThread) -> None:
    response = httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "model": "mystery-9"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_model"
    [row] = gateway.wait_rows(1)
    assert (row["status_code"], row["outcome"], row["error_code"]) == (400, "error", "invalid_model")


def test_no_provider_configured_is_a_clear_error(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    response = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT)
    assert response.status_code == 400
    assert "no provider is configured" in response.json()["error"]["message"]


def test_oversized_body_is_413(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    gateway = start_gateway(providers=provider_table(fake), gateway={"max_body_bytes": 1000})
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    response = httpx.post(gateway.url + "/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    chunked = httpx.post(gateway.url + "/v1/messages", content=iter([b"{" + b" " * 600, b" " * 600 + b"}"]))
    assert chunked.status_code == 413
    assert chunked.json()["type"] == "error"
    assert fake.requests == []


def test_provider_down_is_502_after_retries(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    gateway = start_gateway(
        providers=[
            {
                "name": "down",
                "protocol": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "models": ["*"],
                "max_retries": 2,
            }
        ],
    )
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway).chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    assert caught.value.code == "provider_error"
    [row] = gateway.wait_rows(1)
    assert (row["status_code"], row["error_code"], row["provider"]) == (502, "provider_error", "down")


def test_provider_timeout_is_504(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    gateway = start_gateway(providers=provider_table(fake, timeout_s=0.3, max_retries=0))
    fake.script({"delay_ms": 1500})
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        ant(gateway).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 1.4
    [row] = gateway.wait_rows(1)
    assert row["error_code"] == "provider_timeout"


def test_provider_4xx_keeps_its_status_and_message(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"status": 400, "message": "max_tokens: too large for this model"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        ant(gateway).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert "max_tokens: too large for this model" in caught.value.message
    assert len(fake.requests) == 1, "a provider's own 4xx is not retried"
    fake.script({"status": 404, "message": "The model `gpt-9` does not exist"})
    with pytest.raises(openai.NotFoundError) as not_found:
        oai(gateway).chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert "does not exist" in not_found.value.message


def test_5xx_and_429_are_retried_then_succeed(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"status": 500}, {"text": "recovered"})
    completion = oai(gateway).chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert completion.choices[0].message.content == "recovered"
    fake.clear_requests()
    fake.script({"status": 429, "retry_after": 0.05}, {"text": "after backoff"})
    completion = oai(gateway).chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert completion.choices[0].message.content == "after backoff"
    assert len(fake.requests) == 2


def test_persistent_5xx_is_502(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"status": 500}, {"status": 503})
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway).chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert caught.value.status_code == 502


def test_fallback_to_the_next_provider(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    gateway = start_gateway(
        providers=[
            {
                "name": "primary",
                "protocol": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "models": ["gpt-*"],
                "max_retries": 0,
            },
            {
                "name": "secondary",
                "protocol": "openai",
                "base_url": fake.openai_base_url,
                "models": ["gpt-*"],
            },
        ],
    )
    raw = oai(gateway).chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
    assert raw.headers["x-tollhouse-provider"] == "secondary"
    [row] = gateway.wait_rows(1)
    assert row["provider"] == "secondary" and row["outcome"] == "ok"


def test_provider_crash_mid_stream_ends_the_stream_with_an_error(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"text": "a b c d e f g h", "drop_after_chunks": 3})
    with pytest.raises(openai.APIError):
        list(oai(gateway).chat.completions.create(**CHAT, stream=True))  # type: ignore[call-overload]
    [row] = gateway.wait_rows(1)
    assert row["outcome"] == "error" and row["stream"] is True
    assert row["error_code"] == "provider_error"


def test_client_disconnect_mid_stream_records_partial_usage(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script({"text": " ".join(["word"] * 40), "chunk_delay_ms": 50, "usage": {"input_tokens": 77}})
    with httpx.stream(
        "POST",
        gateway.url + "/v1/messages",
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "talk"}],
        },
    ) as response:
        for seen, _ in enumerate(response.iter_bytes(), start=1):
            if seen >= 4:
                break
    [row] = gateway.wait_rows(1)
    assert row["outcome"] == "client_disconnected"
    assert row["input_tokens"] == 77, "input known from message_start"
    assert row["output_tokens"] > 0, "output estimated from the text relayed"
    assert row["cost_nanos"] > 0
    deadline = time.monotonic() + 5
    while fake.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.disconnects == 1, "the upstream stream is closed, not left running"


def test_server_survives_all_of_the_above(gateway: ServerThread) -> None:
    for body in (b"", b"\xff\xfe", b"null", b'{"model": null}'):
        assert httpx.post(gateway.url + "/v1/messages", content=body).status_code == 400
    assert httpx.get(gateway.url + "/health").json()["status"] == "ok"


def test_fallback_sends_the_callers_model_not_the_previous_providers(
    start_gateway: StartGateway, fake: FakeProviderThread
) -> None:
    gateway = start_gateway(
        providers=[
            {
                "name": "router",
                "protocol": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "prefix": "acme",
                "models": ["acme/*"],
                "max_retries": 0,
            },
            {"name": "direct", "protocol": "openai", "base_url": fake.openai_base_url, "models": ["acme/*"]},
        ],
    )
    oai(gateway).chat.completions.create(model="acme/gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert fake.requests[-1]["body"]["model"] == "acme/gpt-4o"
