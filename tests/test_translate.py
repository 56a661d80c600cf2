"""OpenAI Chat Completions <-> Anthropic Messages translation, checked against the real SDK types."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from tollhouse.errors import InvalidParameter, InvalidRequest, MissingField
from tollhouse.gateway.translate import (
    ChatStreamToMessages,
    MessagesStreamToChat,
    chat_request_to_messages,
    chat_response_to_messages,
    messages_request_to_chat,
    messages_response_to_chat,
)
from tollhouse.pricing.usage import Usage

STREAM_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
PNG = "iVBORw0KGgo="


def chat_request(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    return chat_request_to_messages(body, "claude-sonnet-4-5")


def anthropic_request(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": list(messages), **fields}


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    return messages_request_to_chat(body, "gpt-4o")


# -- OpenAI chat request -> Anthropic request ---------------------------------------------------


def test_minimal_request_gets_upstream_model_and_default_max_tokens() -> None:
    out = to_anthropic(chat_request(user("hi")))
    assert out == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4096,
    }


def test_single_system_message_becomes_a_string() -> None:
    out = to_anthropic(chat_request({"role": "system", "content": "be brief"}, user("hi")))
    assert out["system"] == "be brief"
    assert out["messages"] == [{"role": "user", "content": "hi"}]


def test_system_and_developer_messages_become_text_blocks() -> None:
    out = to_anthropic(
        chat_request(
            {"role": "system", "content": "one"},
            {"role": "developer", "content": [{"type": "text", "text": "two"}]},
            user("hi"),
        )
    )
    assert out["system"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]


def test_cache_control_on_a_part_is_kept() -> None:
    part = {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}
    out = to_anthropic(chat_request({"role": "system", "content": [part]}, user([part])))
    expected = [{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}]
    assert out["system"] == expected
    assert out["messages"][0]["content"] == expected


def test_user_content_parts_text_and_images() -> None:
    out = to_anthropic(
        chat_request(
            user(
                [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ]
            )
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_pdf_file_part_becomes_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    out = to_anthropic(chat_request(user([part])))
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        }
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "data:image/png,not-base64"}},
        {"type": "image_url", "image_url": {}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}},
    ],
)
def test_untranslatable_content_parts_are_refused(part: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        to_anthropic(chat_request(user([part])))


def test_consecutive_same_role_messages_are_merged() -> None:
    out = to_anthropic(
        chat_request(user("a"), user([{"type": "text", "text": "b"}]), {"role": "assistant", "content": "c"})
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
    ]


def test_empty_messages_are_skipped() -> None:
    out = to_anthropic(chat_request(user("a"), {"role": "assistant", "content": ""}, user("b")))
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_final_assistant_prefill_loses_trailing_whitespace() -> None:
    out = to_anthropic(chat_request(user("a"), {"role": "assistant", "content": "The answer is "}))
    assert out["messages"][-1] == {"role": "assistant", "content": "The answer is"}


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "use tools"},
    {"role": "user", "content": "weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
    {"role": "user", "content": "thanks, and which is warmer?"},
]


def test_tool_calls_and_results() -> None:
    out = to_anthropic(chat_request(*TOOL_CONVERSATION))
    assert out["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "25C"}],
                },
                {"type": "text", "text": "thanks, and which is warmer?"},
            ],
        },
    ]


def test_tool_results_go_first_in_a_merged_user_turn() -> None:
    out = to_anthropic(
        chat_request(
            user("go"),
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
            user("note"),
            {"role": "tool", "tool_call_id": "c", "content": "done"},
        )
    )
    assert [block["type"] for block in out["messages"][-1]["content"]] == ["tool_result", "text"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        (None, {}),
        ('{"a": 1', {"_raw": '{"a": 1'}),
        ("[1, 2]", {"_raw": "[1, 2]"}),
    ],
)
def test_tool_arguments_that_are_not_an_object_are_kept_raw(arguments: Any, expected: dict[str, Any]) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    out = to_anthropic(chat_request(user("go"), {"role": "assistant", "content": None, "tool_calls": [call]}))
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": expected}]


def test_tools_become_anthropic_tools() -> None:
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tools = [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Get weather", "parameters": params},
        },
        {"type": "function", "function": {"name": "now", "strict": True}},
    ]
    out = to_anthropic(chat_request(user("hi"), tools=tools))
    assert out["tools"] == [
        {"name": "weather", "description": "Get weather", "input_schema": params},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in out


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert to_anthropic(chat_request(user("hi"), tools=TOOLS, tool_choice=choice))["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    out = to_anthropic(chat_request(user("hi"), tools=TOOLS, parallel_tool_calls=False))
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    out = to_anthropic(
        chat_request(user("hi"), tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    )
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_without_tools_is_dropped() -> None:
    assert "tool_choice" not in to_anthropic(chat_request(user("hi"), tool_choice="required"))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {}}}, "tool_choice"),
    ],
)
def test_bad_tools_are_refused(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        to_anthropic(chat_request(user("hi"), **fields))
    assert caught.value.param == param


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert to_anthropic(chat_request(user("hi"), max_tokens=100))["max_tokens"] == 100
    assert (
        to_anthropic(chat_request(user("hi"), max_tokens=100, max_completion_tokens=50))["max_tokens"] == 50
    )


@pytest.mark.parametrize("value", [0, -1, "10", 1.5])
def test_bad_max_tokens_is_refused(value: Any) -> None:
    with pytest.raises(InvalidParameter):
        to_anthropic(chat_request(user("hi"), max_tokens=value))


def test_sampling_stop_stream_and_user() -> None:
    out = to_anthropic(
        chat_request(user("hi"), temperature=0.3, top_p=0.9, stop="END", stream=True, user="user-42")
    )
    assert out["temperature"] == 0.3
    assert out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "user-42"}
    assert to_anthropic(chat_request(user("hi"), stop=["a", "b"]))["stop_sequences"] == ["a", "b"]


def test_temperature_is_clamped_to_anthropic_range() -> None:
    assert to_anthropic(chat_request(user("hi"), temperature=1.7))["temperature"] == 1.0


def test_openai_only_fields_are_dropped() -> None:
    out = to_anthropic(
        chat_request(
            user("hi"),
            n=1,
            stream=False,
            stream_options={"include_usage": True},
            logprobs=True,
            top_logprobs=3,
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=0.5,
            logit_bias={"1": 2},
            response_format={"type": "json_object"},
            store=True,
            metadata={"k": "v"},
            service_tier="auto",
            prompt_cache_key="abc",
        )
    )
    assert set(out) == {"model", "messages", "max_tokens"}


def test_json_schema_response_format_becomes_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    out = to_anthropic(chat_request(user("hi"), response_format=fmt))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize("n", [2, 0])
def test_n_other_than_one_is_refused(n: int) -> None:
    with pytest.raises(InvalidParameter) as caught:
        to_anthropic(chat_request(user("hi"), n=n))
    assert caught.value.param == "n"


@pytest.mark.parametrize(("effort", "budget"), [("low", 1024), ("medium", 4096), ("high", 16384)])
def test_reasoning_effort_enables_thinking(effort: str, budget: int) -> None:
    out = to_anthropic(chat_request(user("hi"), reasoning_effort=effort, temperature=0.2, top_p=0.5))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == 4096 + budget
    assert "temperature" not in out
    assert "top_p" not in out


def test_explicit_max_tokens_caps_the_thinking_budget() -> None:
    out = to_anthropic(chat_request(user("hi"), reasoning_effort="high", max_completion_tokens=8000))
    assert out["max_tokens"] == 8000
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 7999}
    out = to_anthropic(chat_request(user("hi"), reasoning_effort="low", max_tokens=1000))
    assert out["max_tokens"] == 1000
    assert "thinking" not in out


def test_reasoning_effort_none_and_unknown() -> None:
    assert "thinking" not in to_anthropic(chat_request(user("hi"), reasoning_effort="none"))
    with pytest.raises(InvalidParameter) as caught:
        to_anthropic(chat_request(user("hi"), reasoning_effort="extreme"))
    assert caught.value.param == "reasoning_effort"


def test_thinking_field_passes_through() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2000}
    out = to_anthropic(chat_request(user("hi"), thinking=thinking, max_tokens=10000))
    assert out["thinking"] == thinking
    assert out["max_tokens"] == 10000
    with pytest.raises(InvalidParameter):
        to_anthropic(chat_request(user("hi"), thinking={"type": "enabled", "budget_tokens": 10}))
    with pytest.raises(InvalidParameter):
        to_anthropic(chat_request(user("hi"), thinking={"type": "sometimes"}))


def test_structural_errors() -> None:
    with pytest.raises(MissingField):
        to_anthropic({"model": "gpt-4o"})
    with pytest.raises(InvalidRequest):
        to_anthropic(chat_request({"role": "system", "content": "only a system prompt"}))
    with pytest.raises(InvalidParameter):
        to_anthropic(chat_request({"role": "narrator", "content": "hi"}))
    with pytest.raises(MissingField):
        to_anthropic(chat_request(user("a"), {"role": "tool", "content": "x"}))
    with pytest.raises(InvalidParameter):
        to_anthropic(chat_request(user("a"), {"role": "assistant", "tool_calls": [{"id": "c"}]}))


# -- Anthropic response -> OpenAI response ------------------------------------------------------

ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_01abc",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig"},
        {"type": "text", "text": "Checking "},
        {"type": "text", "text": "now."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 100,
        "output_tokens": 50,
    },
}


def test_anthropic_message_becomes_chat_completion() -> None:
    out = messages_response_to_chat(ANTHROPIC_MESSAGE, "claude-sonnet-4-5")
    completion = ChatCompletion.model_validate(out)
    assert completion.id == "chatcmpl-msg_01abc"
    assert completion.object == "chat.completion"
    assert isinstance(completion.created, int)
    assert completion.model == "claude-sonnet-4-5"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking now."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id == "toolu_1"
    assert call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert out["choices"][0]["message"]["reasoning_content"] == "The user wants weather."
    assert out["usage"] == {
        "prompt_tokens": 130,
        "completion_tokens": 50,
        "total_tokens": 180,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


def test_tool_only_message_has_null_content() -> None:
    resp = {**ANTHROPIC_MESSAGE, "content": [ANTHROPIC_MESSAGE["content"][3]]}
    out = messages_response_to_chat(resp, "m")
    assert out["choices"][0]["message"]["content"] is None
    assert "reasoning_content" not in out["choices"][0]["message"]


def test_raw_tool_input_goes_back_as_the_original_string() -> None:
    block = {"type": "tool_use", "id": "t", "name": "f", "input": {"_raw": '{"a": 1'}}
    out = messages_response_to_chat({**ANTHROPIC_MESSAGE, "content": [block]}, "m")
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"a": 1'


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_finish_reason_mapping(stop_reason: str, finish_reason: str) -> None:
    out = messages_response_to_chat({**ANTHROPIC_MESSAGE, "stop_reason": stop_reason}, "m")
    assert ChatCompletion.model_validate(out).choices[0].finish_reason == finish_reason


# -- Anthropic stream -> OpenAI chunks ----------------------------------------------------------


def message_start(usage: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    message: dict[str, Any] = {
        "id": "msg_stream",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 12, "output_tokens": 1},
    }
    return "message_start", {"type": "message_start", "message": message}


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, usage: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    return "message_delta", {"type": "message_delta", "delta": delta, "usage": usage}


MESSAGE_STOP = ("message_stop", {"type": "message_stop"})
PING = ("ping", {"type": "ping"})

TEXT_STREAM = [
    message_start(),
    block_start(0, {"type": "text", "text": ""}),
    PING,
    block_delta(0, {"type": "text_delta", "text": "Hello"}),
    block_delta(0, {"type": "text_delta", "text": " world"}),
    block_stop(0),
    message_delta("end_turn", {"output_tokens": 7}),
    MESSAGE_STOP,
]

TOOL_STREAM = [
    message_start(),
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    block_delta(0, {"type": "thinking_delta", "thinking": "Need the "}),
    block_delta(0, {"type": "thinking_delta", "thinking": "weather."}),
    block_delta(0, {"type": "signature_delta", "signature": "sig"}),
    block_stop(0),
    block_start(1, {"type": "text", "text": ""}),
    block_delta(1, {"type": "text_delta", "text": "Checking."}),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}),
    block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
    block_delta(2, {"type": "input_json_delta", "partial_json": 'ris"}'}),
    block_stop(2),
    block_start(3, {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {}}),
    block_delta(3, {"type": "input_json_delta", "partial_json": '{"tz": "CET"}'}),
    block_stop(3),
    message_delta("tool_use", {"output_tokens": 40}),
    MESSAGE_STOP,
]


def run_messages_stream(
    events: list[tuple[str, dict[str, Any]]], include_usage: bool = True
) -> tuple[MessagesStreamToChat, list[dict[str, Any]]]:
    translator = MessagesStreamToChat("claude-sonnet-4-5", include_usage=include_usage)
    chunks: list[dict[str, Any]] = []
    for event, data in events:
        chunks.extend(translator.feed(event, data))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return translator, chunks


def test_text_stream_chunks() -> None:
    translator, chunks = run_messages_stream(TEXT_STREAM)
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " world"},
        {},
        None,
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, None, "stop"]
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_stream"}
    assert len({c["created"] for c in chunks}) == 1
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"claude-sonnet-4-5"}
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    assert translator.usage == Usage(input_tokens=12, output_tokens=7)
    assert translator.error is None


def test_usage_chunk_only_when_asked() -> None:
    translator, chunks = run_messages_stream(TEXT_STREAM, include_usage=False)
    assert all(chunk["choices"] for chunk in chunks)
    assert all("usage" not in chunk for chunk in chunks)
    assert translator.usage.output_tokens == 7


def test_tool_and_thinking_stream_chunks() -> None:
    _, chunks = run_messages_stream(TOOL_STREAM)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Need the "},
        {"reasoning_content": "weather."},
        {"content": "Checking."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]},
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "toolu_b",
                    "type": "function",
                    "function": {"name": "time", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"tz": "CET"}'}}]},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_accumulates_to_the_same_completion_as_the_sdk_sees_it() -> None:
    _, chunks = run_messages_stream(TOOL_STREAM)
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("toolu_a", "weather", '{"city": "Paris"}'),
        ("toolu_b", "time", '{"tz": "CET"}'),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert final.usage.completion_tokens == 40


def test_stream_usage_with_cache_tokens() -> None:
    start_usage = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 1,
    }
    events = [message_start(start_usage), *TEXT_STREAM[1:-2], message_delta("end_turn", {"output_tokens": 9})]
    translator, chunks = run_messages_stream([*events, MESSAGE_STOP])
    assert translator.usage == Usage(
        input_tokens=5,
        cache_read_tokens=1000,
        cache_write_5m_tokens=100,
        cache_write_1h_tokens=200,
        output_tokens=9,
    )
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 1305,
        "completion_tokens": 9,
        "total_tokens": 1314,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }


def test_message_delta_input_counts_override_message_start() -> None:
    delta_usage = {"input_tokens": 20, "cache_read_input_tokens": 50, "output_tokens": 9}
    events = [message_start({"input_tokens": 0, "output_tokens": 1}), message_delta("end_turn", delta_usage)]
    translator, _ = run_messages_stream([*events, MESSAGE_STOP])
    assert translator.usage == Usage(input_tokens=20, cache_read_tokens=50, output_tokens=9)


def test_error_event_is_exposed_not_raised() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    translator = MessagesStreamToChat("m", include_usage=True)
    translator.feed(*message_start())
    assert translator.feed("error", {"type": "error", "error": error}) == []
    assert translator.error == error
    assert translator.feed(*PING) == []


def test_stop_reason_in_stream_maps_like_the_response() -> None:
    events = [message_start(), message_delta("max_tokens", {"output_tokens": 3}), MESSAGE_STOP]
    _, chunks = run_messages_stream(events, include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


# -- Anthropic request -> OpenAI chat request ---------------------------------------------------


def test_minimal_anthropic_request() -> None:
    out = to_chat(anthropic_request(user("hi"), system="be brief"))
    assert out == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 1024,
    }


def test_system_blocks_are_joined() -> None:
    system = [
        {"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "two"},
    ]
    assert to_chat(anthropic_request(user("hi"), system=system))["messages"][0] == {
        "role": "system",
        "content": "one\ntwo",
    }


def test_user_blocks_become_content_parts() -> None:
    content = [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}},
    ]
    assert to_chat(anthropic_request(user(content)))["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"},
                },
                {"type": "text", "text": "plain doc"},
            ],
        }
    ]


def test_single_text_block_becomes_a_string() -> None:
    content = [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]
    assert to_chat(anthropic_request(user(content)))["messages"] == [{"role": "user", "content": "hi"}]


ANTHROPIC_TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "two calls", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "is_error": False,
                "content": [
                    {"type": "text", "text": "25C"},
                    {"type": "text", "text": "sunny"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/map.png"}},
                ],
            },
            {"type": "text", "text": "which is warmer?"},
        ],
    },
]


def test_tool_use_and_results_become_tool_calls_and_tool_messages() -> None:
    out = to_chat(anthropic_request(*ANTHROPIC_TOOL_CONVERSATION))
    assert out["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "25C\nsunny"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/map.png"}},
                {"type": "text", "text": "which is warmer?"},
            ],
        },
    ]


def test_thinking_only_assistant_turn_is_dropped() -> None:
    thinking = {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}
    assert to_chat(anthropic_request(user("a"), thinking, user("b")))["messages"] == [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ]


def test_tool_only_assistant_turn_has_null_content() -> None:
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}
    message = to_chat(anthropic_request(user("a"), call))["messages"][1]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_anthropic_tools_become_function_tools() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [
        {
            "name": "weather",
            "description": "Get weather",
            "input_schema": schema,
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "custom", "name": "now", "input_schema": {"type": "object"}},
    ]
    out = to_chat(anthropic_request(user("hi"), tools=tools))
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "weather", "parameters": schema, "description": "Get weather"},
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]
    assert "tool_choice" not in out


A_TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_anthropic_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    out = to_chat(anthropic_request(user("hi"), tools=A_TOOLS, tool_choice=choice))
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_disable_parallel_tool_use() -> None:
    choice = {"type": "auto", "disable_parallel_tool_use": True}
    out = to_chat(anthropic_request(user("hi"), tools=A_TOOLS, tool_choice=choice))
    assert out["parallel_tool_calls"] is False


def test_anthropic_sampling_stop_stream_metadata() -> None:
    out = to_chat(
        anthropic_request(
            user("hi"),
            temperature=0.5,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END"],
            stream=True,
            metadata={"user_id": "user-42"},
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    )
    assert out == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1024,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "user-42",
    }


def test_output_config_format_becomes_response_format() -> None:
    schema = {"type": "object"}
    out = to_chat(
        anthropic_request(user("hi"), output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "max_tokens": 1},
        anthropic_request({"role": "system", "content": "hi"}),
        anthropic_request(user([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}])),
        anthropic_request(user([{"type": "image", "source": {"type": "file", "file_id": "file_1"}}])),
        anthropic_request(user([{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}])),
        anthropic_request(user("hi"), tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        anthropic_request(user("hi"), tools=A_TOOLS, tool_choice={"type": "sometimes"}),
    ],
)
def test_untranslatable_anthropic_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        to_chat(body)


# -- OpenAI response -> Anthropic response ------------------------------------------------------

CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-xyz",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "broken", "arguments": '{"x": '},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 100,
        "completion_tokens": 30,
        "total_tokens": 130,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 10},
    },
}


def test_chat_completion_becomes_anthropic_message() -> None:
    out = chat_response_to_messages(CHAT_COMPLETION, "gpt-4o")
    message = Message.model_validate(out)
    assert message.id == "msg_xyz"
    assert message.model == "gpt-4o"
    assert message.stop_reason == "tool_use"
    assert message.stop_sequence is None
    assert out["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "broken", "input": {"_raw": '{"x": '}},
    ]
    assert out["usage"] == {
        "input_tokens": 60,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 40,
        "output_tokens": 30,
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_stop_reason_mapping(finish_reason: str, stop_reason: str) -> None:
    choice = {**CHAT_COMPLETION["choices"][0], "finish_reason": finish_reason}
    out = chat_response_to_messages({**CHAT_COMPLETION, "choices": [choice]}, "gpt-4o")
    assert Message.model_validate(out).stop_reason == stop_reason


def test_refusal_becomes_text_and_refusal_stop() -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    out = chat_response_to_messages({**CHAT_COMPLETION, "choices": [choice]}, "gpt-4o")
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_reasoning_content_is_not_turned_into_thinking() -> None:
    message = {"role": "assistant", "content": "4", "reasoning_content": "2+2"}
    out = chat_response_to_messages({**CHAT_COMPLETION, "choices": [{"index": 0, "message": message}]}, "m")
    assert out["content"] == [{"type": "text", "text": "4"}]
    assert out["stop_reason"] == "end_turn"


# -- OpenAI chunks -> Anthropic stream ----------------------------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


def usage_chunk(usage: dict[str, Any]) -> dict[str, Any]:
    return {**chunk({}), "choices": [], "usage": usage}


def run_chat_stream(
    chunks: list[dict[str, Any]], *, conforming: bool = True
) -> tuple[ChatStreamToMessages, list[tuple[str, dict[str, Any]]]]:
    """Feed chunks (checked against the SDK unless ``conforming`` is off), then finish."""
    translator = ChatStreamToMessages("gpt-4o")
    events: list[tuple[str, dict[str, Any]]] = []
    for item in chunks:
        if conforming:
            ChatCompletionChunk.model_validate(item)
        events.extend(translator.feed(item))
    events.extend(translator.finish())
    for name, data in events:
        assert STREAM_EVENT.validate_python(data).type == name
    return translator, events


def accumulate(events: list[tuple[str, dict[str, Any]]]) -> Message:
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for _, data in events:
        snapshot = accumulate_event(
            event=STREAM_EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=json_bufs
        )
    assert snapshot is not None
    return Message.model_validate(snapshot.model_dump())


CHAT_TEXT_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": " world"}),
    chunk({}, "stop"),
    usage_chunk({"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}),
]


def test_text_chunks_become_anthropic_events_in_order() -> None:
    translator, events = run_chat_stream(CHAT_TEXT_STREAM)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_s1"
    assert start["model"] == "gpt-4o"
    assert start["usage"]["output_tokens"] == 0
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[2][1]["delta"] == {"type": "text_delta", "text": "Hello"}
    assert events[5][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[5][1]["usage"]["output_tokens"] == 5
    assert events[5][1]["usage"]["input_tokens"] == 20
    assert translator.usage == Usage(input_tokens=20, output_tokens=5)
    message = accumulate(events)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "Hello world"}
    ]
    assert message.stop_reason == "end_turn"


CHAT_TOOL_STREAM = [
    chunk({"role": "assistant", "content": None}),
    chunk({"content": "Checking."}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "time", "arguments": '{"tz"'},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": ': "CET"}'}}]}),
    chunk({}, "tool_calls"),
    usage_chunk(
        {
            "prompt_tokens": 100,
            "completion_tokens": 30,
            "total_tokens": 130,
            "prompt_tokens_details": {"cached_tokens": 60},
        }
    ),
]


def test_tool_call_chunks_become_tool_use_blocks() -> None:
    translator, events = run_chat_stream(CHAT_TOOL_STREAM)
    assert [(name, data.get("index")) for name, data in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "weather",
        "input": {},
    }
    assert events[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city": '}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"] == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
        "output_tokens": 30,
    }
    assert translator.usage == Usage(input_tokens=40, cache_read_tokens=60, output_tokens=30)
    message = accumulate(events)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "time", "input": {"tz": "CET"}},
    ]


def test_tool_call_without_an_id_gets_one() -> None:
    _, events = run_chat_stream(
        [chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]})]
    )
    block = events[1][1]["content_block"]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")


def test_without_usage_chunk_output_tokens_are_zero() -> None:
    translator, events = run_chat_stream(CHAT_TEXT_STREAM[:-1])
    assert events[-2][1]["usage"] == {"output_tokens": 0}
    assert translator.usage == Usage()


def test_usage_known_at_start_goes_into_message_start() -> None:
    first = chunk(
        {"role": "assistant", "content": "Hi"},
        usage={"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9},
    )
    _, events = run_chat_stream([first])
    assert events[0][1]["message"]["usage"]["input_tokens"] == 9


def test_empty_stream_still_closes_properly() -> None:
    translator = ChatStreamToMessages("gpt-4o")
    events = translator.finish()
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0][1]["message"]["id"].startswith("msg_")
    assert translator.finish() == []
    assert translator.feed(chunk({"content": "late"})) == []


def test_reasoning_and_other_choices_are_ignored_in_the_stream() -> None:
    other = {**chunk({"content": "second choice"}), "choices": [{"index": 1, "delta": {"content": "x"}}]}
    _, events = run_chat_stream(
        [chunk({"reasoning_content": "hmm"}), other, chunk({"content": "ok"}, "stop")]
    )
    message = accumulate(events)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "ok"}
    ]


def test_error_chunk_becomes_an_error_event() -> None:
    translator = ChatStreamToMessages("gpt-4o")
    translator.feed(chunk({"content": "partial"}))
    events = translator.feed({"error": {"message": "upstream exploded", "type": "server_error"}})
    assert events == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "upstream exploded"}})
    ]
    assert translator.error == {"message": "upstream exploded", "type": "server_error"}


# -- round trips --------------------------------------------------------------------------------


def test_chat_request_round_trip_keeps_the_conversation() -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    original = chat_request(
        *TOOL_CONVERSATION, tools=tools, tool_choice="required", max_tokens=500, stop=["x"]
    )
    back = to_chat(to_anthropic(original))
    assert back["messages"] == [
        {"role": "system", "content": "use tools"},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25C"},
        {"role": "user", "content": "thanks, and which is warmer?"},
    ]
    assert back["tools"] == tools
    assert back["tool_choice"] == "required"
    assert back["max_tokens"] == 500
    assert back["stop"] == ["x"]


def test_anthropic_request_round_trip_keeps_the_conversation() -> None:
    original = anthropic_request(
        *ANTHROPIC_TOOL_CONVERSATION[:2], tools=A_TOOLS, tool_choice={"type": "tool", "name": "f"}
    )
    back = to_anthropic(to_chat(original))
    assert back["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": ANTHROPIC_TOOL_CONVERSATION[1]["content"][2:]},
    ]
    assert back["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert back["tool_choice"] == {"type": "tool", "name": "f"}
    assert back["max_tokens"] == 1024


def test_malformed_arguments_survive_a_round_trip() -> None:
    out = chat_response_to_messages(CHAT_COMPLETION, "gpt-4o")
    back = messages_response_to_chat(out, "gpt-4o")
    calls = back["choices"][0]["message"]["tool_calls"]
    assert [call["function"]["arguments"] for call in calls] == ['{"city":"Paris"}', '{"x": ']


def test_response_round_trip() -> None:
    plain = {**ANTHROPIC_MESSAGE, "content": ANTHROPIC_MESSAGE["content"][1:]}
    back = chat_response_to_messages(messages_response_to_chat(plain, "m"), "m")
    assert back["content"] == [
        {"type": "text", "text": "Checking now."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
    ]
    assert back["stop_reason"] == "tool_use"
    assert back["usage"]["output_tokens"] == 50
    assert back["usage"]["cache_read_input_tokens"] == 100
    # OpenAI has no cache-write count: writes come back as plain input.
    assert back["usage"]["input_tokens"] == 30


def test_stream_round_trip() -> None:
    _, chunks = run_messages_stream(TOOL_STREAM)
    translator, events = run_chat_stream(chunks)
    message = accumulate(events)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {"tz": "CET"}},
    ]
    assert message.id == "msg_stream"
    assert message.stop_reason == "tool_use"
    assert translator.usage == Usage(input_tokens=12, output_tokens=40)


def test_tool_calls_without_index_are_told_apart_by_id() -> None:
    calls = [
        chunk(
            {
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"n": 1}'}}
                ]
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"n": 2}'}}
                ]
            }
        ),
    ]
    _, events = run_chat_stream([*calls, chunk({}, "tool_calls")], conforming=False)
    assert [block.model_dump(exclude_none=True) for block in accumulate(events).content] == [
        {"type": "tool_use", "id": "a", "name": "f", "input": {"n": 1}},
        {"type": "tool_use", "id": "b", "name": "g", "input": {"n": 2}},
    ]


def test_streamed_refusal_becomes_text_with_refusal_stop() -> None:
    _, events = run_chat_stream([chunk({"refusal": "I can't."}), chunk({}, "stop")])
    message = accumulate(events)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "I can't."}
    ]
    assert message.stop_reason == "refusal"


def test_max_completion_tokens_null_falls_back_to_max_tokens() -> None:
    assert (
        to_anthropic(chat_request(user("hi"), max_completion_tokens=None, max_tokens=77))["max_tokens"] == 77
    )


def test_translation_leaves_its_input_untouched() -> None:
    chat_body = chat_request(*TOOL_CONVERSATION, {"role": "assistant", "content": "so "}, tools=TOOLS)
    anthropic_body = anthropic_request(*ANTHROPIC_TOOL_CONVERSATION, tools=A_TOOLS)
    bodies = [chat_body, anthropic_body, ANTHROPIC_MESSAGE, CHAT_COMPLETION]
    before = copy.deepcopy(bodies)
    to_anthropic(chat_body)
    to_chat(anthropic_body)
    messages_response_to_chat(ANTHROPIC_MESSAGE, "m")
    chat_response_to_messages(CHAT_COMPLETION, "m")
    assert bodies == before
