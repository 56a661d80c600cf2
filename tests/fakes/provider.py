"""A fake LLM provider: a real aiohttp server on 127.0.0.1 speaking the OpenAI and Anthropic wire formats.

The gateway's tests and benchmarks point its providers here (OpenAI protocol at
``http://127.0.0.1:PORT/v1``, Anthropic protocol at ``http://127.0.0.1:PORT``), so the gateway
talks real HTTP, real SSE and real error bodies, and tests can see exactly what it sent.

Usage is deterministic so tests can assert exact costs:

* prompt / input tokens = max(1, C // 4), where C is the number of characters of text in the
  request: every message's ``content`` (a string, or blocks' ``text`` and nested ``content``),
  Anthropic's ``system``, the legacy ``prompt``, the embeddings ``input``;
* completion / output tokens = max(1, W), where W is the number of whitespace-separated words
  of everything generated: reply text, thinking text and tool-call arguments JSON;
* a scripted ``usage`` (in the protocol's own field names) overrides these exactly.

Behaviour is scripted with items (see ``ScriptItem``) queued through ``FakeProvider.script``
or ``POST /_control/script``; each is consumed by the next request it matches, then the default
reply ("Hello from the fake provider.") resumes. With ``require_key`` set, a request must present
that key (OpenAI: ``Authorization: Bearer``; Anthropic: ``x-api-key`` or a bearer token) or gets
a 401 in its protocol's shape. ``disconnects`` counts requests whose client went away before the
response was complete (aiohttp cancels the handler, so a client timeout during ``delay_ms`` counts).
Runnable for benchmarks:
``python tests/fakes/provider.py --port 18080 --no-record [--delay-ms 20]``.
This module must not import tollhouse.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import re
import secrets
import signal
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypedDict

import orjson
from aiohttp import web

DEFAULT_TEXT = "Hello from the fake provider."
DEFAULT_THINKING = "The user said hello, so I should greet them back."
EMBEDDING_DIMENSIONS = 8
MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-sonnet-4-6", "claude-haiku-4-5")
# Requests on these paths consume script items that have no `path`; others need an explicit one.
GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages"})

Protocol = Literal["openai", "anthropic"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ToolCall(TypedDict):
    name: str
    arguments: dict[str, Any] | str


class ScriptItem(TypedDict, total=False):
    """One scripted behaviour; every field is optional."""

    path: str  # only requests to this path (without query) consume the item
    model: str  # only requests for this model consume the item
    status: int  # answer with this error status, in the protocol's error shape
    error_type: str  # error type for `status` or `error_after_chunks` (default from the status)
    error_code: str  # OpenAI `error.code` (default from the status)
    message: str  # error message
    retry_after: float  # seconds, sent as `retry-after` (429 sends 1 unless set)
    delay_ms: float  # sleep before the first byte
    chunk_delay_ms: float  # sleep between stream events
    text: str  # reply text ("" when a tool call is scripted)
    thinking: str  # Anthropic thinking text, used when the request enables thinking
    usage: dict[str, Any]  # exact usage, in the protocol's own field names
    tool_call: ToolCall  # used when the request has `tools`
    stop_reason: str  # finish_reason (OpenAI) / stop_reason (Anthropic)
    full_delta_usage: bool  # Anthropic message_delta also carries input and cache tokens
    drop_after_chunks: int  # stream only: close the socket after N events
    error_after_chunks: int  # stream only: send the protocol's error event after N events
    close_connection: bool  # close the socket without a response


class RecordedRequest(TypedDict):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    thinking: str | None = None
    tool_name: str | None = None
    tool_arguments: str = ""

    @property
    def output_tokens(self) -> int:
        generated = f"{self.text} {self.thinking or ''} {self.tool_arguments}"
        return max(1, len(generated.split()))


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "permission_denied", "You are not allowed to do this."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
}
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}
_PIECE = re.compile(r"\s*\S+|\s+$")
_SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


def count_prompt_tokens(*parts: Any) -> int:
    """The documented prompt rule: max(1, characters of text // 4)."""
    return max(1, sum(_text_chars(part) for part in parts) // 4)


def _text_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_chars(part) for part in value)
    if isinstance(value, dict):
        return _text_chars(value.get("text")) + _text_chars(value.get("content"))
    return 0


def _pieces(text: str) -> list[str]:
    """Word-sized stream deltas that join back to exactly `text`."""
    return _PIECE.findall(text)


def _slices(text: str, size: int = 10) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _merge(target: dict[str, Any], override: Mapping[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


def _openai_event(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _anthropic_event(payload: dict[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _openai_error_body(status: int, item: ScriptItem) -> dict[str, Any]:
    default_type, default_code, default_message = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return {
        "error": {
            "message": item.get("message", default_message),
            "type": item.get("error_type", default_type),
            "param": None,
            "code": item.get("error_code", default_code),
        }
    }


def _anthropic_error_body(status: int, item: ScriptItem, request_id: str) -> dict[str, Any]:
    default_type, default_message = _ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", "Error.")
    )
    error = {"type": item.get("error_type", default_type), "message": item.get("message", default_message)}
    return {"type": "error", "error": error, "request_id": request_id}


def error_response(protocol: Protocol, status: int, item: ScriptItem | None = None) -> web.Response:
    """An error in the protocol's own shape, with its request-id and retry-after headers."""
    item = item or ScriptItem()
    headers: dict[str, str] = {}
    if "retry_after" in item or status == 429:
        headers["retry-after"] = f"{item.get('retry_after', 1):g}"
    if protocol == "openai":
        headers["x-request-id"] = _request_id()
        return _json(_openai_error_body(status, item), status, headers)
    request_id = headers["request-id"] = _request_id()
    return _json(_anthropic_error_body(status, item, request_id), status, headers)


def openai_usage(
    prompt: int, completion: int, override: Mapping[str, Any] | None, *, details: bool = True
) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 0}
    if details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    if override:
        _merge(usage, override)
    if not override or "total_tokens" not in override:
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def anthropic_usage(
    input_tokens: int, output_tokens: int, override: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Usage where cache_creation_input_tokens and the 5m/1h split stay consistent unless both are set."""
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if override:
        _merge(usage, override)
        split = usage["cache_creation"]
        if "cache_creation" not in override:
            split["ephemeral_5m_input_tokens"] = usage["cache_creation_input_tokens"]
        elif "cache_creation_input_tokens" not in override:
            usage["cache_creation_input_tokens"] = (
                split["ephemeral_5m_input_tokens"] + split["ephemeral_1h_input_tokens"]
            )
    return usage


def embedding_vector(text: str, dimensions: int) -> bytes:
    """A deterministic unit vector for `text`, as little-endian float32 (OpenAI's base64 layout)."""
    digest = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    raw = [value / 32767.5 - 1.0 for value in struct.unpack(f"<{dimensions}H", digest)]
    norm = sum(value * value for value in raw) ** 0.5 or 1.0
    return struct.pack(f"<{dimensions}f", *(value / norm for value in raw))


def _thinking_signature(thinking: str) -> str:
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def _has_tools(body: Mapping[str, Any]) -> bool:
    return bool(body.get("tools"))


def _reply(body: Mapping[str, Any], item: ScriptItem, *, thinking: str | None = None) -> Reply:
    tool = item.get("tool_call") if _has_tools(body) else None
    if tool is None:
        return Reply(text=item.get("text", DEFAULT_TEXT), thinking=thinking)
    arguments = tool["arguments"]
    arguments_json = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return Reply(item.get("text", ""), thinking, tool["name"], arguments_json)


class FakeProvider:
    """The server. Safe to script and inspect from other threads (see `FakeProviderThread`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        require_key: str | None = None,
        delay_ms: float = 0.0,
    ) -> None:
        self.host = host
        self.record = record
        self.require_key = require_key
        self.delay_ms = delay_ms
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()
        self._script: list[ScriptItem] = []
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self._routes())
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._stopping = False

    async def stop(self) -> None:
        if self._runner is not None:
            self._stopping = True
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fake provider has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    # -- scripting and inspection ---------------------------------------------------------

    def script(self, *items: ScriptItem) -> None:
        with self._lock:
            self._script.extend(items)

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    @property
    def pending_script(self) -> list[ScriptItem]:
        with self._lock:
            return list(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def disconnects(self) -> int:
        """Requests whose client went away before the response was complete."""
        return self._disconnects

    @property
    def state(self) -> dict[str, int]:
        with self._lock:
            return {
                "disconnects": self._disconnects,
                "requests": len(self._requests),
                "pending_script": len(self._script),
            }

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._disconnects = 0

    def _next_item(self, path: str, model: Any) -> ScriptItem:
        if not self._script:
            return ScriptItem()
        generation = path in GENERATION_PATHS
        with self._lock:
            for index, item in enumerate(self._script):
                wanted_path = item.get("path")
                if (wanted_path is None and not generation) or (wanted_path not in (None, path)):
                    continue
                if "model" in item and item["model"] != model:
                    continue
                return self._script.pop(index)
        return ScriptItem()

    def _count_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1

    # -- HTTP plumbing --------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        guarded = self._counting_disconnects
        return [
            web.post("/v1/chat/completions", guarded(self._chat_completions)),
            web.post("/v1/completions", guarded(self._completions)),
            web.post("/v1/embeddings", guarded(self._embeddings)),
            web.get("/v1/models", self._models),
            web.post("/v1/messages", guarded(self._messages)),
            web.post("/v1/messages/count_tokens", guarded(self._count_tokens)),
            web.post("/_control/script", self._control_add_script),
            web.get("/_control/script", self._control_get_script),
            web.delete("/_control/script", self._control_clear_script),
            web.get("/_control/requests", self._control_get_requests),
            web.delete("/_control/requests", self._control_clear_requests),
            web.get("/_control/state", self._control_state),
            web.post("/_control/reset", self._control_reset),
        ]

    def _counting_disconnects(self, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except asyncio.CancelledError:
                # aiohttp cancels the handler when the client goes away (handler_cancellation).
                if not self._stopping:
                    self._count_disconnect()
                raise

        return wrapped

    async def _accept(
        self, request: web.Request, protocol: Protocol
    ) -> tuple[dict[str, Any], ScriptItem] | web.Response:
        """Record, authenticate, pick the script item, wait; or answer with an error right away."""
        raw = await request.read()
        body: Any
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        if self.record:
            recorded = RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
            )
            with self._lock:
                self._requests.append(recorded)
        if self.require_key is not None and _presented_key(request, protocol) != self.require_key:
            return error_response(protocol, 401)
        if not isinstance(body, dict):
            return error_response(protocol, 400, ScriptItem(message="The request body is not valid JSON."))
        item = self._next_item(request.path, body.get("model"))
        delay_ms = item.get("delay_ms", self.delay_ms)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if item.get("close_connection"):
            _close_socket(request)
            return web.Response()
        if "status" in item:
            return error_response(protocol, item["status"], item)
        return body, item

    async def _stream(
        self,
        request: web.Request,
        events: list[bytes],
        item: ScriptItem,
        error_event: bytes,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**_SSE_HEADERS, **headers})
        chunk_delay = item.get("chunk_delay_ms", 0) / 1000
        drop_after = item.get("drop_after_chunks")
        error_after = item.get("error_after_chunks")
        try:
            await response.prepare(request)
            for index, event in enumerate(events):
                if index and chunk_delay:
                    await asyncio.sleep(chunk_delay)
                if index == drop_after:
                    _close_socket(request)
                    return response
                if index == error_after:
                    await response.write(error_event)
                    break
                await response.write(event)
            await response.write_eof()
        except ConnectionResetError:
            self._count_disconnect()
        return response

    # -- OpenAI ---------------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        accepted = await self._accept(request, "openai")
        if isinstance(accepted, web.Response):
            return accepted
        body, item = accepted
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            return error_response("openai", 400, ScriptItem(message="'model' and 'messages' are required."))
        reply = _reply(body, item)
        usage = openai_usage(count_prompt_tokens(body["messages"]), reply.output_tokens, item.get("usage"))
        finish = item.get("stop_reason", "tool_calls" if reply.tool_name else "stop")
        base = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
        }
        headers = {"x-request-id": _request_id()}
        call_id = f"call_{secrets.token_hex(12)}"
        if body.get("stream") is not True:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply.text if reply.text or not reply.tool_name else None,
                "refusal": None,
                "annotations": [],
            }
            if reply.tool_name:
                function = {"name": reply.tool_name, "arguments": reply.tool_arguments}
                message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            payload = {**base, "choices": [choice], "usage": usage, "service_tier": "default"}
            return _json({**payload, "system_fingerprint": "fp_fake"}, headers=headers)

        include_usage = _includes_usage(body)
        chunk_base = {**base, "object": "chat.completion.chunk", "service_tier": "default"}
        chunk_base["system_fingerprint"] = "fp_fake"

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            payload: dict[str, Any] = {**chunk_base, "choices": [choice]}
            if include_usage:
                payload["usage"] = None
            return _openai_event(payload)

        events = [chunk({"role": "assistant", "content": "" if reply.text else None, "refusal": None})]
        events += [chunk({"content": piece}) for piece in _pieces(reply.text)]
        if reply.tool_name:
            function = {"name": reply.tool_name, "arguments": ""}
            events.append(
                chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": function}]})
            )
            events += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                for part in _slices(reply.tool_arguments)
            ]
        events.append(chunk({}, finish))
        if include_usage:
            events.append(_openai_event({**chunk_base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        error_event = _openai_event(_openai_error_body(500, item))
        return await self._stream(request, events, item, error_event, headers)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        accepted = await self._accept(request, "openai")
        if isinstance(accepted, web.Response):
            return accepted
        body, item = accepted
        if not isinstance(body.get("model"), str) or "prompt" not in body:
            return error_response("openai", 400, ScriptItem(message="'model' and 'prompt' are required."))
        text = item.get("text", DEFAULT_TEXT)
        prompt_tokens = count_prompt_tokens(body["prompt"])
        usage = openai_usage(prompt_tokens, Reply(text).output_tokens, item.get("usage"), details=False)
        finish = item.get("stop_reason", "stop")
        base = {
            "id": f"cmpl-{secrets.token_hex(12)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
        }
        headers = {"x-request-id": _request_id()}
        if body.get("stream") is not True:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
            return _json({**base, "choices": [choice], "usage": usage}, headers=headers)

        include_usage = _includes_usage(body)

        def chunk(piece: str, finish_reason: str | None = None) -> bytes:
            choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish_reason}
            payload: dict[str, Any] = {**base, "choices": [choice]}
            if include_usage:
                payload["usage"] = None
            return _openai_event(payload)

        events = [chunk(piece) for piece in _pieces(text)]
        events.append(chunk("", finish))
        if include_usage:
            events.append(_openai_event({**base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        error_event = _openai_event(_openai_error_body(500, item))
        return await self._stream(request, events, item, error_event, headers)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        accepted = await self._accept(request, "openai")
        if isinstance(accepted, web.Response):
            return accepted
        body, item = accepted
        inputs = _embedding_inputs(body.get("input"))
        if not isinstance(body.get("model"), str) or not inputs:
            return error_response("openai", 400, ScriptItem(message="'model' and 'input' are required."))
        dimensions = body.get("dimensions")
        if not isinstance(dimensions, int) or dimensions < 1:
            dimensions = EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = embedding_vector(text, dimensions)
            embedding: str | list[float] = (
                base64.b64encode(vector).decode()
                if as_base64
                else list(struct.unpack(f"<{dimensions}f", vector))
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        prompt_tokens = count_prompt_tokens(body["input"])
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        _merge(usage, item.get("usage") or {})
        payload = {"object": "list", "data": data, "model": body["model"], "usage": usage}
        return _json(payload, headers={"x-request-id": _request_id()})

    async def _models(self, request: web.Request) -> web.StreamResponse:
        protocol: Protocol = "anthropic" if "anthropic-version" in request.headers else "openai"
        if self.require_key is not None and _presented_key(request, protocol) != self.require_key:
            return error_response(protocol, 401)
        if protocol == "openai":
            data = [
                {"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"} for name in MODELS
            ]
            return _json({"object": "list", "data": data}, headers={"x-request-id": _request_id()})
        models = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for name in MODELS
        ]
        payload = {"data": models, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
        return _json(payload, headers={"request-id": _request_id()})

    # -- Anthropic ------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        accepted = await self._accept(request, "anthropic")
        if isinstance(accepted, web.Response):
            return accepted
        body, item = accepted
        missing = [name for name in ("model", "messages", "max_tokens") if name not in body]
        if missing:
            return error_response("anthropic", 400, ScriptItem(message=f"{missing[0]}: Field required"))
        thinking = item.get("thinking", DEFAULT_THINKING) if _thinking_enabled(body) else None
        reply = _reply(body, item, thinking=thinking)
        input_tokens = count_prompt_tokens(body.get("system"), body["messages"])
        usage = anthropic_usage(input_tokens, reply.output_tokens, item.get("usage"))
        stop_reason = item.get("stop_reason", "tool_use" if reply.tool_name else "end_turn")
        tool_id = f"toolu_{secrets.token_hex(12)}"
        message_id = f"msg_{secrets.token_hex(12)}"
        headers = {"request-id": _request_id()}
        blocks: list[dict[str, Any]] = []
        if reply.thinking is not None:
            signature = _thinking_signature(reply.thinking)
            blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": signature})
        if reply.text or not reply.tool_name:
            blocks.append({"type": "text", "text": reply.text})
        if reply.tool_name:
            tool_input = orjson.loads(reply.tool_arguments)
            blocks.append({"type": "tool_use", "id": tool_id, "name": reply.tool_name, "input": tool_input})
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if body.get("stream") is not True:
            return _json(message, headers=headers)

        start_usage = {**usage, "output_tokens": 1}
        start = {**message, "content": [], "stop_reason": None, "usage": start_usage}
        events = [_anthropic_event({"type": "message_start", "message": start})]
        for index, block in enumerate(blocks):
            events += _anthropic_block_events(index, block)
        events.insert(2, _anthropic_event({"type": "ping"}))  # after the first content_block_start
        delta_usage: dict[str, Any] = {"output_tokens": usage["output_tokens"]}
        if item.get("full_delta_usage"):
            for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
                delta_usage[name] = usage[name]
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        events.append(_anthropic_event({"type": "message_delta", "delta": delta, "usage": delta_usage}))
        events.append(_anthropic_event({"type": "message_stop"}))
        error_event = _anthropic_event(_anthropic_error_body(529, item, headers["request-id"]))
        return await self._stream(request, events, item, error_event, headers)

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        accepted = await self._accept(request, "anthropic")
        if isinstance(accepted, web.Response):
            return accepted
        body, item = accepted
        if "model" not in body or "messages" not in body:
            return error_response("anthropic", 400, ScriptItem(message="model: Field required"))
        result = {"input_tokens": count_prompt_tokens(body.get("system"), body["messages"])}
        _merge(result, item.get("usage") or {})
        return _json(result, headers={"request-id": _request_id()})

    # -- control API ----------------------------------------------------------------------

    async def _control_add_script(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            payload = None
        responses = payload.get("responses") if isinstance(payload, dict) else None
        if not isinstance(responses, list) or not all(isinstance(entry, dict) for entry in responses):
            return _json({"error": 'expected {"responses": [{...}, ...]}'}, status=400)
        self.script(*responses)
        return _json({"queued": len(responses), "pending": len(self.pending_script)})

    async def _control_get_script(self, request: web.Request) -> web.StreamResponse:
        return _json({"responses": self.pending_script})

    async def _control_clear_script(self, request: web.Request) -> web.StreamResponse:
        self.clear_script()
        return _json({"pending": 0})

    async def _control_get_requests(self, request: web.Request) -> web.StreamResponse:
        return _json(self.requests)

    async def _control_clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.clear_requests()
        return _json({"requests": 0})

    async def _control_state(self, request: web.Request) -> web.StreamResponse:
        return _json(self.state)

    async def _control_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return _json(self.state)


def _anthropic_block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    def delta(payload: dict[str, Any]) -> bytes:
        return _anthropic_event({"type": "content_block_delta", "index": index, "delta": payload})

    kind = block["type"]
    opening: dict[str, Any]
    if kind == "thinking":
        opening = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            delta({"type": "thinking_delta", "thinking": piece}) for piece in _pieces(block["thinking"])
        ]
        deltas.append(delta({"type": "signature_delta", "signature": block["signature"]}))
    elif kind == "text":
        opening = {"type": "text", "text": ""}
        deltas = [delta({"type": "text_delta", "text": piece}) for piece in _pieces(block["text"])]
    else:
        opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        deltas = [
            delta({"type": "input_json_delta", "partial_json": part}) for part in ["", *_slices(arguments)]
        ]
    start = _anthropic_event({"type": "content_block_start", "index": index, "content_block": opening})
    stop = _anthropic_event({"type": "content_block_stop", "index": index})
    return [start, *deltas, stop]


def _presented_key(request: web.Request, protocol: Protocol) -> str | None:
    if protocol == "anthropic" and "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    authorization = request.headers.get("authorization", "")
    return authorization[7:] if authorization[:7].lower() == "bearer " else None


def _includes_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _thinking_enabled(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return []
    if all(isinstance(entry, int) for entry in value):
        return [repr(value)]
    return [entry if isinstance(entry, str) else repr(entry) for entry in value]


def _close_socket(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


class FakeProviderThread:
    """A `FakeProvider` on its own event loop in a background thread, for sync tests or other loops."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        require_key: str | None = None,
        delay_ms: float = 0.0,
    ) -> None:
        self.provider = FakeProvider(
            host=host, port=port, record=record, require_key=require_key, delay_ms=delay_ms
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name="fake-provider", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def stop(self) -> None:
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or stop_requested is None:
            return
        loop.call_soon_threadsafe(stop_requested.set)
        thread.join()
        self._thread = self._loop = self._stop_requested = None

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        try:
            await self.provider.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self.provider.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.provider.port

    @property
    def base_url(self) -> str:
        return self.provider.base_url

    @property
    def openai_base_url(self) -> str:
        return self.provider.openai_base_url

    @property
    def anthropic_base_url(self) -> str:
        return self.provider.anthropic_base_url

    def script(self, *items: ScriptItem) -> None:
        self.provider.script(*items)

    def clear_script(self) -> None:
        self.provider.clear_script()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.provider.requests

    def clear_requests(self) -> None:
        self.provider.clear_requests()

    @property
    def disconnects(self) -> int:
        return self.provider.disconnects

    @property
    def state(self) -> dict[str, int]:
        return self.provider.state

    def reset(self) -> None:
        self.provider.reset()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI + Anthropic provider for tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080, help="0 picks a free port")
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=float(os.environ.get("MOCK_DELAY_MS", "0")),
        help="default: $MOCK_DELAY_MS",
    )
    parser.add_argument("--no-record", action="store_true", help="do not keep received requests (benchmarks)")
    parser.add_argument("--require-key", default=None, help="answer 401 unless this API key is presented")
    args = parser.parse_args(argv)
    provider = FakeProvider(
        host=args.host,
        port=args.port,
        record=not args.no_record,
        require_key=args.require_key,
        delay_ms=args.delay_ms,
    )

    async def serve() -> None:
        stop_requested = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop_requested.set)
        await provider.start()
        print(f"fake provider listening on {provider.base_url}", flush=True)
        try:
            await stop_requested.wait()
        finally:
            await provider.stop()

    try:
        import uvloop
    except ImportError:
        run: Callable[[Any], None] = asyncio.run
    else:
        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve())


if __name__ == "__main__":
    main()
