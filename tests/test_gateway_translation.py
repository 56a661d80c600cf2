"""Cross-protocol calls: OpenAI chat for a Claude model, Anthropic messages for a GPT model."""

from __future__ import annotations

import json

import anthropic
import openai

from tests.conftest import ServerThread
from tests.fakes.provider import FakeProviderThread
from tests.prices import nanos


def test_openai_chat_served_by_anthropic(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script(
        {"text": "Bonjour", "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 100}}
    )
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    completion = sdk.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "system", "content": "Be French."}, {"role": "user", "content": "Hello"}],
        max_tokens=50,
    )
    assert completion.choices[0].message.content == "Bonjour"
    assert completion.model == "claude-haiku-4-5"
    assert completion.usage is not None and completion.usage.prompt_tokens == 112
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["system"] in ("Be French.", [{"type": "text", "text": "Be French."}])
    [row] = gateway.wait_rows(1)
    assert row["cost_nanos"] == nanos("claude-haiku-4-5", input=12, output=3, cache_read=100)


def test_openai_stream_served_by_anthropic_with_tool_call(
    gateway: ServerThread, fake: FakeProviderThread
) -> None:
    fake.script(
        {
            "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "usage": {"input_tokens": 40, "output_tokens": 9},
        }
    )
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    chunks = list(
        sdk.chat.completions.create(
            model="claude-haiku-4-5",
            messages=[{"role": "user", "content": "weather?"}],
            tools=tools,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    arguments = "".join(
        call.function.arguments or ""
        for chunk in chunks
        for choice in chunk.choices
        for call in (choice.delta.tool_calls or [])
        if call.function
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9
    [row] = gateway.wait_rows(1)
    assert row["outcome"] == "ok" and row["cost_nanos"] == nanos("claude-haiku-4-5", input=40, output=9)


def test_anthropic_messages_served_by_openai(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"text": "Sure.", "usage": {"prompt_tokens": 30, "completion_tokens": 2}})
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)
    message = sdk.messages.create(
        model="gpt-4o", max_tokens=20, system="terse", messages=[{"role": "user", "content": "ok?"}]
    )
    assert message.content[0].type == "text" and message.content[0].text == "Sure."
    assert message.usage.input_tokens == 30 and message.usage.output_tokens == 2
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "terse"}
    [row] = gateway.wait_rows(1)
    assert row["cost_nanos"] == nanos("gpt-4o", input=30, output=2)


def test_anthropic_stream_served_by_openai(gateway: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"text": "streamed reply here", "usage": {"prompt_tokens": 8, "completion_tokens": 3}})
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)
    with sdk.messages.stream(
        model="gpt-4o", max_tokens=20, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed reply here"
    assert final.usage.output_tokens == 3
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    [row] = gateway.wait_rows(1)
    assert (row["input_tokens"], row["output_tokens"]) == (8, 3)
