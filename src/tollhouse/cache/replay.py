"""Re-emit a cached whole answer as the SSE stream its protocol would have sent.

A streaming client that hits the cache must not notice: OpenAI chat gets a role chunk,
content chunks, a finish chunk, the usage chunk only when it asked for one, then ``[DONE]``;
legacy completions get text chunks; Anthropic gets ``message_start`` … ``message_stop`` with
usage. Answers with tool calls are never cached, so only text (and thinking) is replayed.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollhouse.cache.entry import CachedEntry
from tollhouse.gateway.sse import encode

PIECE_CHARS = 128  # a few chunks per answer: streaming-shaped, without paying per token
_DONE = b"data: [DONE]\n\n"


def _pieces(text: str) -> list[str]:
    if not text:
        return []
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)]


def replay_as_sse(entry: CachedEntry, *, include_usage: bool = False) -> list[bytes]:
    """The SSE events for ``entry`` (``include_usage``: the OpenAI client set it in ``stream_options``)."""
    body = orjson.loads(entry.body)
    if entry.endpoint == "/v1/messages":
        return _anthropic(body)
    if entry.endpoint == "/v1/completions":
        return _completion(body, include_usage)
    if entry.endpoint == "/v1/chat/completions":
        return _chat(body, include_usage)
    raise ValueError(f"{entry.endpoint} answers are never streamed")


def _chat(body: dict[str, Any], include_usage: bool) -> list[bytes]:
    base: dict[str, Any] = {
        "id": body.get("id", "chatcmpl-cached"),
        "object": "chat.completion.chunk",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    for optional in ("system_fingerprint", "service_tier"):
        if body.get(optional) is not None:
            base[optional] = body[optional]
    if include_usage:
        base["usage"] = None
    out: list[bytes] = []

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append(encode(orjson.dumps({**base, "choices": [choice]})))

    for choice in body.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunk(index, {"role": message.get("role", "assistant"), "content": ""})
        for field in ("reasoning_content", "refusal", "content"):
            value = message.get(field)
            if isinstance(value, str):
                for piece in _pieces(value):
                    chunk(index, {field: piece})
        chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage:
        out.append(encode(orjson.dumps({**base, "choices": [], "usage": body.get("usage")})))
    out.append(_DONE)
    return out


def _completion(body: dict[str, Any], include_usage: bool) -> list[bytes]:
    base: dict[str, Any] = {
        "id": body.get("id", "cmpl-cached"),
        "object": "text_completion",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    if include_usage:
        base["usage"] = None
    out: list[bytes] = []
    for choice in body.get("choices") or []:
        index = choice.get("index", 0)
        for piece in _pieces(choice.get("text") or ""):
            item = {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
            out.append(encode(orjson.dumps({**base, "choices": [item]})))
        final = {
            "text": "",
            "index": index,
            "logprobs": None,
            "finish_reason": choice.get("finish_reason") or "stop",
        }
        out.append(encode(orjson.dumps({**base, "choices": [final]})))
    if include_usage:
        out.append(encode(orjson.dumps({**base, "choices": [], "usage": body.get("usage")})))
    out.append(_DONE)
    return out


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode(orjson.dumps({"type": name, **data}), name)


def _anthropic(body: dict[str, Any]) -> list[bytes]:
    usage = dict(body.get("usage") or {})
    start_usage = {**usage, "output_tokens": min(1, int(usage.get("output_tokens") or 0))}
    message = {
        "id": body.get("id", "msg_cached"),
        "type": "message",
        "role": body.get("role", "assistant"),
        "model": body.get("model", ""),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    out = [_event("message_start", {"message": message})]
    for index, block in enumerate(body.get("content") or []):
        out.extend(_block(index, block))
    delta_usage = {"output_tokens": int(usage.get("output_tokens") or 0)}
    for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        if field in usage:
            delta_usage[field] = usage[field]
    delta = {"stop_reason": body.get("stop_reason") or "end_turn", "stop_sequence": body.get("stop_sequence")}
    out.append(_event("message_delta", {"delta": delta, "usage": delta_usage}))
    out.append(_event("message_stop", {}))
    return out


def _block(index: int, block: dict[str, Any]) -> list[bytes]:
    kind = block.get("type")
    out: list[bytes] = []
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        if block.get("citations"):
            start["citations"] = []
        out.append(_event("content_block_start", {"index": index, "content_block": start}))
        for piece in _pieces(block.get("text") or ""):
            delta = {"type": "text_delta", "text": piece}
            out.append(_event("content_block_delta", {"index": index, "delta": delta}))
        for citation in block.get("citations") or []:
            delta = {"type": "citations_delta", "citation": citation}
            out.append(_event("content_block_delta", {"index": index, "delta": delta}))
    elif kind == "thinking":
        out.append(
            _event(
                "content_block_start", {"index": index, "content_block": {"type": "thinking", "thinking": ""}}
            )
        )
        for piece in _pieces(block.get("thinking") or ""):
            delta = {"type": "thinking_delta", "thinking": piece}
            out.append(_event("content_block_delta", {"index": index, "delta": delta}))
        if block.get("signature"):
            delta = {"type": "signature_delta", "signature": block["signature"]}
            out.append(_event("content_block_delta", {"index": index, "delta": delta}))
    else:  # redacted_thinking and any whole block: sent complete in its start event
        out.append(_event("content_block_start", {"index": index, "content_block": block}))
    out.append(_event("content_block_stop", {"index": index}))
    return out
