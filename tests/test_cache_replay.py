"""Cached answers replayed as SSE, read back by the official SDKs' own stream parsers; and the reverse."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import openai
import orjson
import pytest
from anthropic.types import Message
from openai.types import Completion
from openai.types.chat import ChatCompletion

from tollhouse.cache import CachedEntry, StreamAccumulator, replay_as_sse
from tollhouse.pricing.usage import Usage

LONG_TEXT = "The quick brown fox jumps over the lazy dog. " * 8  # several replay pieces

CHAT_BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": LONG_TEXT, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        },
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 90, "total_tokens": 102},
}

COMPLETION_BODY: dict[str, Any] = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1700000000,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [{"text": LONG_TEXT, "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 90, "total_tokens": 95},
}

MESSAGE_BODY: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Let me think. " * 20, "signature": "sig-abc"},
        {"type": "text", "text": LONG_TEXT},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 95,
    },
}


def cached(endpoint: str, body: dict[str, Any]) -> CachedEntry:
    return CachedEntry(orjson.dumps(body), endpoint, "default", str(body["model"]), Usage(), 0)


class SSEServer:
    """A loopback HTTP server that answers every POST with the SSE bytes it was given."""

    def __init__(self) -> None:
        self.payload = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def sse_server() -> Iterator[SSEServer]:
    server = SSEServer()
    yield server
    server.close()


def test_chat_replay_reads_back_through_the_openai_sdk(sse_server: SSEServer) -> None:
    sse_server.payload = b"".join(
        replay_as_sse(cached("/v1/chat/completions", CHAT_BODY), include_usage=True)
    )
    client = openai.OpenAI(base_url=sse_server.url + "/v1", api_key="sk-test", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) > 4  # role, several content pieces, finish, usage
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == LONG_TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 102
    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == LONG_TEXT
    assert final.choices[0].finish_reason == "stop"
    assert final.id == "chatcmpl-1" and final.model == "gpt-4o-2024-08-06"


def test_chat_replay_without_include_usage_sends_no_usage() -> None:
    events = replay_as_sse(cached("/v1/chat/completions", CHAT_BODY))
    assert events[-1] == b"data: [DONE]\n\n"
    assert not any(b'"usage"' in e for e in events)


def test_completion_replay_reads_back_through_the_openai_sdk(sse_server: SSEServer) -> None:
    sse_server.payload = b"".join(
        replay_as_sse(cached("/v1/completions", COMPLETION_BODY), include_usage=True)
    )
    client = openai.OpenAI(base_url=sse_server.url + "/v1", api_key="sk-test", max_retries=0)
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", stream=True))
    assert all(isinstance(c, Completion) for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == LONG_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 90


def test_messages_replay_reads_back_through_the_anthropic_sdk(sse_server: SSEServer) -> None:
    sse_server.payload = b"".join(replay_as_sse(cached("/v1/messages", MESSAGE_BODY)))
    client = anthropic.Anthropic(base_url=sse_server.url, api_key="sk-ant-test", max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == LONG_TEXT
    assert final.model_dump(exclude_none=True) == Message.model_validate(MESSAGE_BODY).model_dump(
        exclude_none=True
    )
    assert final.usage.output_tokens == 95 and final.usage.cache_read_input_tokens == 100


@pytest.mark.parametrize(
    ("endpoint", "body", "parse"),
    [
        ("/v1/chat/completions", CHAT_BODY, ChatCompletion.model_validate),
        ("/v1/completions", COMPLETION_BODY, Completion.model_validate),
        ("/v1/messages", MESSAGE_BODY, Message.model_validate),
    ],
)
def test_accumulator_rebuilds_the_whole_answer(endpoint: str, body: dict[str, Any], parse: Any) -> None:
    events = replay_as_sse(cached(endpoint, body), include_usage=True)
    accumulator = StreamAccumulator(endpoint)
    blob = b"".join(events)
    for start in range(0, len(blob), 37):  # arbitrary network chunking
        accumulator.feed(blob[start : start + 37])
    rebuilt = accumulator.result()
    assert rebuilt is not None
    assert parse(orjson.loads(rebuilt)).model_dump(exclude_none=True) == parse(body).model_dump(
        exclude_none=True
    )


def test_accumulator_fills_in_usage_the_client_was_not_sent() -> None:
    accumulator = StreamAccumulator("/v1/chat/completions")
    for event in replay_as_sse(cached("/v1/chat/completions", CHAT_BODY)):
        accumulator.feed(event)
    rebuilt = orjson.loads(accumulator.result(Usage(input_tokens=12, output_tokens=90)) or b"null")
    assert rebuilt["usage"] == {"prompt_tokens": 12, "completion_tokens": 90, "total_tokens": 102}


def openai_tool_stream() -> list[bytes]:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]},
                "finish_reason": None,
            }
        ],
    }
    return [b"data: " + orjson.dumps(chunk) + b"\n\n", b"data: [DONE]\n\n"]


def anthropic_tool_stream() -> list[bytes]:
    start = {"type": "message_start", "message": {**MESSAGE_BODY, "content": []}}
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "t", "name": "f"},
    }
    return [
        b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n",
        b"event: content_block_start\ndata: " + orjson.dumps(block) + b"\n\n",
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]


@pytest.mark.parametrize(
    ("endpoint", "events"),
    [
        ("/v1/chat/completions", openai_tool_stream()),
        ("/v1/messages", anthropic_tool_stream()),
        ("/v1/chat/completions", replay_as_sse(cached("/v1/chat/completions", CHAT_BODY))[:-1]),  # no [DONE]
        ("/v1/messages", replay_as_sse(cached("/v1/messages", MESSAGE_BODY))[:-1]),  # no message_stop
        ("/v1/messages", [b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n']),
    ],
)
def test_accumulator_refuses_what_must_not_be_cached(endpoint: str, events: list[bytes]) -> None:
    accumulator = StreamAccumulator(endpoint)
    for event in events:
        accumulator.feed(event)
    assert accumulator.result() is None
