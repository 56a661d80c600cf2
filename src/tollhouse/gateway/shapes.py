"""Small pieces of the answers the gateway builds itself: seed body fields and in-stream errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from tollhouse.errors import TollhouseError
from tollhouse.gateway.call import Call
from tollhouse.gateway.call import Protocol as WireProtocol
from tollhouse.gateway.sse import encode


def with_seed_fields(
    body: dict[str, Any], call: Call, cost_usd: float, cost_text: str, latency: int, *, cached: bool = False
) -> dict[str, Any]:
    """Seed 001's ``cost``/``project_id``/``content`` and seed 004's ``x-tollhouse-*`` body fields."""
    content = None
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            content = message.get("content")
    body["cost"] = cost_usd
    body["project_id"] = call.project_id
    body["content"] = content
    body["x-tollhouse-cached"] = cached
    body["x-tollhouse-cost-usd"] = cost_text
    body["x-tollhouse-latency-ms"] = latency
    return body


def stream_error(call: Call, exc: TollhouseError) -> bytes:
    """An error inside an already-started stream, in the client's own event format."""
    if call.endpoint.protocol is WireProtocol.ANTHROPIC:
        payload = {"type": "error", "error": {"type": "api_error", "message": exc.message}}
        return encode(orjson.dumps(payload), "error")
    payload = {
        "error": {"message": exc.message, "type": exc.openai_type, "code": exc.error_code, "param": None}
    }
    return encode(orjson.dumps(payload))


async def replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def log_id(call: Call) -> str:
    return "log_" + call.request_id.removeprefix("req_")
