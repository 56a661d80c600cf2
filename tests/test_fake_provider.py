"""The fake provider speaks both wire formats well enough for the official SDKs, and its control API works."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from tests.fakes.provider import DEFAULT_TEXT, FakeProvider, FakeProviderThread, ToolCall, count_prompt_tokens

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the benchmark."},
]
PROMPT_TOKENS = count_prompt_tokens(MESSAGES)  # (14 + 27) // 4 == 10
ANTHROPIC_MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the benchmark."}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ANTHROPIC_WEATHER_TOOL: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as provider:
        yield provider


@pytest.fixture
async def oai(fake: FakeProvider) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
async def claude(fake: FakeProvider) -> AsyncIterator[AsyncAnthropic]:
    async with AsyncAnthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def sse_data(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n\n") if line.startswith("data: ")]


# -- OpenAI ---------------------------------------------------------------------------------------


async def test_chat_completion_default_reply_usage_and_headers(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    raw = await oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()

    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert fake.requests[0]["body"]["messages"] == MESSAGES
    assert fake.requests[0]["headers"]["authorization"] == "Bearer sk-test"


async def test_chat_completion_scripted_text_and_exact_usage(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    fake.script(
        {
            "text": "Scripted answer",
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1000},
                "completion_tokens_details": {"reasoning_tokens": 250},
            },
        }
    )
    completion = await oai.chat.completions.create(model="o4-mini", messages=MESSAGES)

    assert completion.choices[0].message.content == "Scripted answer"
    usage = completion.usage
    assert usage is not None and usage.total_tokens == 1500
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 1000
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 250
    again = await oai.chat.completions.create(model="o4-mini", messages=MESSAGES)
    assert again.choices[0].message.content == DEFAULT_TEXT


@pytest.mark.parametrize("include_usage", [False, True])
async def test_chat_stream_wire_format(
    fake: FakeProvider, http: aiohttp.ClientSession, include_usage: bool
) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    async with http.post(f"{fake.openai_base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = await response.read()

    data = sse_data(raw)
    assert raw.endswith(b"data: [DONE]\n\n") and data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == DEFAULT_TEXT
    )
    finishing = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finishing] == ["stop"]
    if include_usage:
        *content_chunks, usage_chunk = chunks
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"]["prompt_tokens"] == PROMPT_TOKENS
        assert usage_chunk["usage"]["completion_tokens"] == 5
        assert all("usage" in c and c["usage"] is None for c in content_chunks)
    else:
        assert all("usage" not in c for c in chunks)


async def test_chat_stream_parsed_by_sdk(oai: AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == PROMPT_TOKENS + 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_chat_tool_call_non_stream_and_stream(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    tool_call: ToolCall = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
    fake.script({"tool_call": tool_call}, {"tool_call": tool_call})

    completion = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == tool_call["arguments"]

    async with oai.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], stream_options={"include_usage": True}
    ) as stream:
        final = await stream.get_final_completion()
    streamed = final.choices[0]
    assert streamed.finish_reason == "tool_calls"
    assert streamed.message.tool_calls is not None
    assert json.loads(streamed.message.tool_calls[0].function.arguments) == tool_call["arguments"]
    assert (
        final.usage is not None and final.usage.completion_tokens == 1
    )  # compact arguments JSON is one word


async def test_tool_call_needs_tools_in_the_request(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    fake.script({"tool_call": {"name": "get_weather", "arguments": "{}"}})
    completion = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.choices[0].message.tool_calls is None


async def test_legacy_completions(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    completion = await oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == DEFAULT_TEXT
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 5)

    fake.script({"text": "one two three"})
    stream = await oai.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Once upon a time",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4 + 3


async def test_embeddings(oai: AsyncOpenAI) -> None:
    as_base64 = await oai.embeddings.create(model="text-embedding-3-small", input="hello world")
    as_floats = await oai.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )
    assert as_base64.object == "list"
    assert len(as_base64.data[0].embedding) == 8
    assert as_base64.data[0].embedding == as_floats.data[0].embedding
    assert sum(value * value for value in as_floats.data[0].embedding) == pytest.approx(1.0, abs=1e-5)
    assert as_floats.usage.prompt_tokens == as_floats.usage.total_tokens == 2

    batch = await oai.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "other"], dimensions=4, encoding_format="float"
    )
    assert [item.index for item in batch.data] == [0, 1]
    assert all(len(item.embedding) == 4 for item in batch.data)
    assert batch.data[0].embedding != batch.data[1].embedding


async def test_models_in_both_protocols(oai: AsyncOpenAI, claude: AsyncAnthropic) -> None:
    openai_models = await oai.models.list()
    assert "gpt-4o-mini" in [model.id for model in openai_models.data]
    anthropic_models = await claude.models.list()
    assert "claude-sonnet-4-6" in [model.id for model in anthropic_models.data]
    assert all(model.type == "model" for model in anthropic_models.data)


# -- Anthropic ------------------------------------------------------------------------------------


async def test_message_default_reply_usage_and_headers(fake: FakeProvider, claude: AsyncAnthropic) -> None:
    raw = await claude.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=100, system="You are terse.", messages=ANTHROPIC_MESSAGES
    )
    message = await raw.parse()

    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-6"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_TEXT
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)
    assert message.usage.cache_creation_input_tokens == message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation is not None
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 0
    headers = fake.requests[0]["headers"]
    assert headers.get("x-api-key") == "sk-ant-test" or headers["authorization"] == "Bearer sk-ant-test"
    assert "anthropic-version" in fake.requests[0]["headers"]


async def test_message_scripted_cache_usage(fake: FakeProvider, claude: AsyncAnthropic) -> None:
    fake.script(
        {"usage": {"input_tokens": 3, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 500}},
        {
            "usage": {
                "input_tokens": 3,
                "output_tokens": 42,
                "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 900},
            }
        },
    )
    first = await claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=ANTHROPIC_MESSAGES
    )
    second = await claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=ANTHROPIC_MESSAGES
    )

    assert first.usage.cache_creation_input_tokens == 2000 and first.usage.cache_read_input_tokens == 500
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 2000
    assert second.usage.cache_creation_input_tokens == 1000 and second.usage.output_tokens == 42
    assert second.usage.cache_creation is not None
    assert second.usage.cache_creation.ephemeral_1h_input_tokens == 900


async def test_beta_query_is_accepted(fake: FakeProvider, claude: AsyncAnthropic) -> None:
    message = await claude.beta.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=ANTHROPIC_MESSAGES,
        betas=["context-1m-2025-08-07"],
        extra_query={"beta": "true"},  # older SDKs add it themselves
    )
    assert message.content[0].type == "text"
    assert fake.requests[0]["query"] == {"beta": "true"}
    assert fake.requests[0]["headers"]["anthropic-beta"] == "context-1m-2025-08-07"


async def test_message_stream_wire_sequence(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": ANTHROPIC_MESSAGES, "stream": True}
    async with http.post(f"{fake.anthropic_base_url}/v1/messages", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = await response.read()

    frames = [frame.split("\n") for frame in raw.decode().split("\n\n") if frame]
    names = [frame[0].removeprefix("event: ") for frame in frames]
    payloads = [json.loads(frame[1].removeprefix("data: ")) for frame in frames]
    assert names == [payload["type"] for payload in payloads]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:-3] == ["content_block_delta"] * 5
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert payloads[0]["message"]["usage"]["output_tokens"] == 1
    assert payloads[0]["message"]["usage"]["input_tokens"] == 6
    assert payloads[-2]["usage"] == {"output_tokens": 5}
    assert payloads[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


async def test_message_stream_with_thinking_parsed_by_sdk(fake: FakeProvider, claude: AsyncAnthropic) -> None:
    fake.script({"text": "Hi there", "thinking": "Greet them briefly", "full_delta_usage": True})
    async with claude.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2000,
        messages=ANTHROPIC_MESSAGES,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        texts = [text async for text in stream.text_stream]
        message = await stream.get_final_message()

    assert "".join(texts) == "Hi there"
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "Greet them briefly" and thinking.signature
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 5)
    assert message.stop_reason == "end_turn"


async def test_message_tool_use_non_stream_and_stream(fake: FakeProvider, claude: AsyncAnthropic) -> None:
    tool_call: ToolCall = {"name": "get_weather", "arguments": {"city": "Paris"}}
    fake.script({"tool_call": tool_call, "text": "Checking."}, {"tool_call": tool_call})
    args: Any = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": ANTHROPIC_MESSAGES}

    message = await claude.messages.create(**args, tools=[ANTHROPIC_WEATHER_TOOL])
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.stop_reason == "tool_use"
    tool_use = message.content[1]
    assert tool_use.type == "tool_use" and tool_use.id.startswith("toolu_")
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris"})

    async with claude.messages.stream(**args, tools=[ANTHROPIC_WEATHER_TOOL]) as stream:
        streamed = await stream.get_final_message()
    assert [block.type for block in streamed.content] == ["tool_use"]
    assert streamed.content[0].type == "tool_use" and streamed.content[0].input == {"city": "Paris"}
    assert streamed.stop_reason == "tool_use"


async def test_count_tokens(fake: FakeProvider, claude: AsyncAnthropic) -> None:
    counted = await claude.messages.count_tokens(
        model="claude-sonnet-4-6", system="You are terse.", messages=ANTHROPIC_MESSAGES
    )
    assert counted.input_tokens == 10
    fake.script({"path": "/v1/messages/count_tokens", "usage": {"input_tokens": 4242}})
    counted = await claude.messages.count_tokens(model="claude-sonnet-4-6", messages=ANTHROPIC_MESSAGES)
    assert counted.input_tokens == 4242


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
    ],
)
async def test_openai_errors(
    fake: FakeProvider, oai: AsyncOpenAI, status: int, exception: type[openai.APIStatusError], error_type: str
) -> None:
    fake.script({"status": status, "message": "scripted failure"})
    with pytest.raises(exception) as caught:
        await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.status_code == status
    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["message"], error["type"]) == ("scripted failure", error_type)
    assert caught.value.response.headers["x-request-id"].startswith("req_")
    assert ("retry-after" in caught.value.response.headers) == (status == 429)


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
async def test_anthropic_errors(
    fake: FakeProvider,
    claude: AsyncAnthropic,
    status: int,
    exception: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    fake.script({"status": status, "retry_after": 7} if status == 429 else {"status": status})
    with pytest.raises(exception) as caught:
        await claude.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=ANTHROPIC_MESSAGES)

    assert caught.value.status_code == status
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type and body["error"]["message"]
    assert caught.value.response.headers["request-id"].startswith("req_")
    assert caught.value.response.headers.get("retry-after") == ("7" if status == 429 else None)


async def test_required_key_rejects_others_in_each_protocol_shape(http: aiohttp.ClientSession) -> None:
    async with FakeProvider(require_key="right") as fake:
        for key, ok in (("wrong", False), ("right", True)):
            async with AsyncOpenAI(base_url=fake.openai_base_url, api_key=key, max_retries=0) as oai:
                if ok:
                    await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                else:
                    with pytest.raises(openai.AuthenticationError) as caught_openai:
                        await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                    assert caught_openai.value.code == "invalid_api_key"
            async with AsyncAnthropic(base_url=fake.anthropic_base_url, api_key=key, max_retries=0) as claude:
                create = claude.messages.create(model="m", max_tokens=10, messages=ANTHROPIC_MESSAGES)
                if ok:
                    await create
                else:
                    with pytest.raises(anthropic.AuthenticationError) as caught_anthropic:
                        await create
                    assert caught_anthropic.value.response.json()["error"]["type"] == "authentication_error"
            body = {"model": "m", "max_tokens": 10, "messages": ANTHROPIC_MESSAGES}
            url = f"{fake.anthropic_base_url}/v1/messages"
            async with http.post(url, json=body, headers={"x-api-key": key}) as response:
                assert response.status == (200 if ok else 401)
        received = [(r["headers"].get("authorization"), r["headers"].get("x-api-key")) for r in fake.requests]
        # This anthropic SDK sends its API key as a bearer token; the real API also takes x-api-key.
        assert received == [
            ("Bearer wrong", None),
            ("Bearer wrong", None),
            (None, "wrong"),
            ("Bearer right", None),
            ("Bearer right", None),
            (None, "right"),
        ]


async def test_invalid_requests_get_400_in_protocol_shape(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{fake.openai_base_url}/chat/completions", data=b"{not json") as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    async with http.post(
        f"{fake.anthropic_base_url}/v1/messages", json={"model": "m", "messages": []}
    ) as response:
        assert response.status == 400
        assert await response.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            "request_id": response.headers["request-id"],
        }
    assert fake.requests[0]["body"] == "{not json"


# -- timing and failures --------------------------------------------------------------------------


async def test_delay_lets_clients_time_out_and_counts_the_disconnect(fake: FakeProvider) -> None:
    fake.script({"delay_ms": 5000})
    async with AsyncOpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", max_retries=0, timeout=0.2
    ) as impatient:
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    await eventually(lambda: fake.disconnects == 1)
    assert len(fake.requests) == 1


async def test_client_leaving_mid_stream_counts_a_disconnect(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    fake.script({"text": "many words " * 20, "chunk_delay_ms": 20})
    stream = await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    await stream.close()

    await eventually(lambda: fake.disconnects == 1)
    assert fake.state == {"disconnects": 1, "requests": 1, "pending_script": 0}


async def test_drop_after_chunks_breaks_both_sdks_mid_stream(
    fake: FakeProvider, oai: AsyncOpenAI, claude: AsyncAnthropic
) -> None:
    fake.script({"drop_after_chunks": 2}, {"drop_after_chunks": 3})
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        stream = await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for chunk in stream:
            received.append(chunk)
    assert [chunk.choices[0].delta.content for chunk in received] == ["", "Hello"]

    events: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):  # this SDK lets the transport error through
        async with claude.messages.stream(
            model="claude-sonnet-4-6", max_tokens=10, messages=ANTHROPIC_MESSAGES
        ) as anthropic_stream:
            async for event in anthropic_stream:
                events.append(event.type)
    assert events[:2] == ["message_start", "content_block_start"]
    assert "message_stop" not in events
    assert fake.disconnects == 0


async def test_error_after_chunks_sends_the_protocol_error_event(
    fake: FakeProvider, oai: AsyncOpenAI, claude: AsyncAnthropic
) -> None:
    fake.script(
        {"error_after_chunks": 2, "message": "upstream fell over"},
        {"error_after_chunks": 3, "error_type": "overloaded_error", "message": "Overloaded"},
    )
    with pytest.raises(openai.APIError, match="upstream fell over"):
        stream = await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    with pytest.raises(anthropic.APIStatusError) as caught:
        async with claude.messages.stream(
            model="claude-sonnet-4-6", max_tokens=10, messages=ANTHROPIC_MESSAGES
        ) as anthropic_stream:
            async for _ in anthropic_stream:
                pass
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": caught.value.body["request_id"],  # type: ignore[index]
    }


async def test_close_connection_without_response(fake: FakeProvider, oai: AsyncOpenAI) -> None:
    fake.script({"close_connection": True})
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == DEFAULT_TEXT


# -- scripting and control ------------------------------------------------------------------------


async def test_script_items_match_path_and_model_in_order(
    fake: FakeProvider, oai: AsyncOpenAI, claude: AsyncAnthropic
) -> None:
    fake.script(
        {"path": "/v1/messages", "text": "for anthropic"},
        {"model": "gpt-4o", "text": "for gpt-4o"},
        {"text": "first come"},
    )

    async def chat(model: str) -> str | None:
        completion = await oai.chat.completions.create(model=model, messages=MESSAGES)
        return completion.choices[0].message.content

    assert await chat("gpt-4o-mini") == "first come"
    assert await chat("gpt-4o") == "for gpt-4o"
    assert await chat("gpt-4o") == DEFAULT_TEXT
    message = await claude.messages.create(model="m", max_tokens=10, messages=ANTHROPIC_MESSAGES)
    assert message.content[0].type == "text" and message.content[0].text == "for anthropic"
    await claude.messages.count_tokens(model="m", messages=ANTHROPIC_MESSAGES)  # consumes nothing unfiltered
    assert fake.pending_script == []


async def test_control_api_over_http(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    control = f"{fake.base_url}/_control"
    async with http.post(
        f"{control}/script", json={"responses": [{"text": "via http"}, {"status": 429}]}
    ) as r:
        assert await r.json() == {"queued": 2, "pending": 2}
    async with http.get(f"{control}/script") as r:
        assert (await r.json())["responses"][0] == {"text": "via http"}
    async with http.post(f"{control}/script", json={"responses": "nope"}) as r:
        assert r.status == 400

    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    async with http.post(f"{fake.openai_base_url}/chat/completions", json=body, params={"x": "1"}) as r:
        assert (await r.json())["choices"][0]["message"]["content"] == "via http"
    async with http.get(f"{control}/requests") as r:
        [recorded] = await r.json()
    assert recorded["method"] == "POST" and recorded["path"] == "/v1/chat/completions"
    assert recorded["query"] == {"x": "1"} and recorded["body"] == body
    assert recorded["headers"]["content-type"] == "application/json"

    async with http.delete(f"{control}/script") as r:
        assert r.status == 200
    async with http.delete(f"{control}/requests") as r:
        assert r.status == 200
    async with http.get(f"{control}/state") as r:
        assert await r.json() == {"disconnects": 0, "requests": 0, "pending_script": 0}
    fake.script({"text": "x"})
    async with http.post(f"{control}/reset") as r:
        assert await r.json() == {"disconnects": 0, "requests": 0, "pending_script": 0}


async def test_no_record_keeps_nothing(http: aiohttp.ClientSession) -> None:
    async with FakeProvider(record=False) as fake:
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
        async with http.post(f"{fake.openai_base_url}/chat/completions", json=body) as response:
            assert response.status == 200
        assert fake.requests == []


def test_thread_runner_serves_sync_clients() -> None:
    with FakeProviderThread() as fake:
        fake.script({"text": "from a thread"})
        with openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0) as client:
            completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0) as claude:
            message = claude.messages.create(model="m", max_tokens=10, messages=ANTHROPIC_MESSAGES)
        assert completion.choices[0].message.content == "from a thread"
        assert message.content[0].type == "text" and message.content[0].text == DEFAULT_TEXT
        assert [r["path"] for r in fake.requests] == ["/v1/chat/completions", "/v1/messages"]
        fake.reset()
        assert fake.state == {"disconnects": 0, "requests": 0, "pending_script": 0}


def test_runs_as_a_script() -> None:
    script = Path(__file__).parent / "fakes" / "provider.py"
    with subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--no-record", "--delay-ms", "1"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
            assert base_url.startswith("http://127.0.0.1:")
            request = urllib.request.Request(
                f"{base_url}/v1/chat/completions",
                data=json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert json.loads(response.read())["choices"][0]["message"]["content"] == DEFAULT_TEXT
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0
