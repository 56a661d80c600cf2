"""Answers for ``th_test_`` keys: well-formed replies in the route's own wire format, made here.

Nothing is sent to any provider and nothing is charged, so an integration can be tested end to
end (SDK parsing, streaming, error handling) for free. Usage is the local estimate, so the
numbers look real; the ledger records the call with outcome ``sandbox`` and cost 0.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.gateway.call import Call, Endpoint
from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.gateway.sse import encode
from tollhouse.pricing.usage import Usage

SANDBOX_TEXT = "This is a sandbox response from Tollhouse: no provider was called and nothing was charged."
_DIMENSIONS = 8


@dataclass(slots=True)
class SandboxAnswer:
    body: bytes | None  # whole answer, or None when streamed
    chunks: list[bytes]
    usage: Usage


def answer(call: Call) -> SandboxAnswer:
    prompt = prompt_tokens(call.body)
    endpoint = call.endpoint
    if endpoint is Endpoint.COUNT_TOKENS:
        return SandboxAnswer(orjson.dumps({"input_tokens": prompt}), [], Usage())
    if endpoint is Endpoint.EMBEDDINGS:
        return _embeddings(call, prompt)
    words = SANDBOX_TEXT.split(" ")
    usage = Usage(input_tokens=prompt, output_tokens=len(words))
    rid = call.request_id.removeprefix("req_")
    if endpoint is Endpoint.MESSAGES:
        if call.stream:
            return SandboxAnswer(None, _messages_stream(call, rid, words, usage), usage)
        return SandboxAnswer(orjson.dumps(_message(call, rid, usage)), [], usage)
    if call.stream:
        return SandboxAnswer(None, _openai_stream(call, rid, words, usage), usage)
    return SandboxAnswer(orjson.dumps(_openai_whole(call, rid, usage)), [], usage)


def _openai_usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _openai_whole(call: Call, rid: str, usage: Usage) -> dict[str, Any]:
    created = int(time.time())
    if call.endpoint is Endpoint.COMPLETIONS:
        return {
            "id": f"cmpl-{rid}",
            "object": "text_completion",
            "created": created,
            "model": call.model,
            "choices": [{"text": SANDBOX_TEXT, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": _openai_usage(usage),
            "project_id": call.project_id,
            "cost": 0.0,
            "sandbox": True,
        }
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": created,
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": SANDBOX_TEXT, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(usage),
        "cost": 0.0,
        "project_id": call.project_id,
        "content": SANDBOX_TEXT,
        "x-tollhouse-cached": False,
        "x-tollhouse-cost-usd": "0",
        "sandbox": True,
    }


def _openai_stream(call: Call, rid: str, words: list[str], usage: Usage) -> list[bytes]:
    created = int(time.time())
    legacy = call.endpoint is Endpoint.COMPLETIONS
    base: dict[str, Any] = {
        "id": f"{'cmpl' if legacy else 'chatcmpl'}-{rid}",
        "object": "text_completion" if legacy else "chat.completion.chunk",
        "created": created,
        "model": call.model,
    }
    out = []
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        if legacy:
            choice: dict[str, Any] = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
        else:
            delta: dict[str, Any] = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        out.append(encode(orjson.dumps({**base, "choices": [choice]})))
    final: dict[str, Any] = (
        {"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}
        if legacy
        else {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    )
    out.append(encode(orjson.dumps({**base, "choices": [final]})))
    if call.client_wants_usage:
        out.append(encode(orjson.dumps({**base, "choices": [], "usage": _openai_usage(usage)})))
    out.append(b"data: [DONE]\n\n")
    return out


def _message(call: Call, rid: str, usage: Usage) -> dict[str, Any]:
    return {
        "id": f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": [{"type": "text", "text": SANDBOX_TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    }


def _messages_stream(call: Call, rid: str, words: list[str], usage: Usage) -> list[bytes]:
    start = _message(call, rid, Usage(input_tokens=usage.input_tokens, output_tokens=1))
    start["content"] = []
    start["stop_reason"] = None
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for i, word in enumerate(words):
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word if i == 0 else " " + word},
                },
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage.output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [encode(orjson.dumps(data), name) for name, data in events]


def _embeddings(call: Call, prompt: int) -> SandboxAnswer:
    raw = call.body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    data = []
    for index, item in enumerate(inputs):
        digest = hashlib.sha256(str(item).encode()).digest()
        vector = [round(v / 2**31, 6) for v in struct.unpack(f"<{_DIMENSIONS}i", digest)]
        embedding: list[float] | str = vector
        if call.body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{_DIMENSIONS}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    body = {
        "object": "list",
        "data": data,
        "model": call.model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }
    return SandboxAnswer(orjson.dumps(body), [], Usage(input_tokens=prompt))
