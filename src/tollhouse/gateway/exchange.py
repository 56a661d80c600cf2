"""How one call crosses to one provider: the upstream request, and how its answer comes back.

There is one exchange per pairing of client protocol and provider protocol. Same-protocol
exchanges pass bytes through and only read the usage; cross-protocol ones translate both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tollhouse.errors import UpstreamError
from tollhouse.gateway.call import Call, Endpoint
from tollhouse.gateway.call import Protocol as WireProtocol
from tollhouse.gateway.estimate import prompt_tokens, tokens_in_text
from tollhouse.gateway.providers import Route
from tollhouse.gateway.sse import SSEEvent, encode
from tollhouse.gateway.translate import (
    ChatStreamToMessages,
    MessagesStreamToChat,
    chat_request_to_messages,
    chat_response_to_messages,
    messages_request_to_chat,
    messages_response_to_chat,
)
from tollhouse.pricing.usage import Usage, from_anthropic, from_openai

ANTHROPIC_VERSION = "2023-06-01"
_DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class Answer:
    """A whole (non-streamed) answer, ready for the client."""

    body: dict[str, Any] | bytes
    usage: Usage
    model: str | None
    service_tier: str | None


class StreamTap(Protocol):
    """Reads usage from a stream while turning upstream events into client bytes."""

    @property
    def model(self) -> str | None: ...

    @property
    def service_tier(self) -> str | None: ...

    @property
    def completed(self) -> bool: ...

    @property
    def error(self) -> dict[str, Any] | None: ...

    def feed(self, event: SSEEvent) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    @property
    def usage(self) -> Usage: ...

    @property
    def usage_is_reported(self) -> bool: ...


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("the provider answered with something that is not JSON") from exc


def _object(raw: bytes) -> dict[str, Any]:
    body = _loads(raw)
    if not isinstance(body, dict):
        raise UpstreamError("the provider answered with JSON that is not an object")
    return body


class Exchange:
    """Base: the upstream URL and headers for a provider protocol."""

    upstream_protocol: WireProtocol

    def __init__(self, call: Call, route: Route) -> None:
        self.call = call
        self.route = route

    def url(self) -> str:
        base = self.route.provider.base_url.rstrip("/")
        if self.upstream_protocol is WireProtocol.OPENAI:
            return base + self.upstream_path()
        query = f"?{self.call.query}" if self.call.query else ""
        return base + self.upstream_path() + query

    def upstream_path(self) -> str:
        raise NotImplementedError

    def upstream_body(self) -> bytes:
        raise NotImplementedError

    def parse(self, raw: bytes) -> Answer:
        raise NotImplementedError

    def tap(self) -> StreamTap:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        provider = self.route.provider
        incoming = self.call.headers
        out = {
            "content-type": "application/json",
            "accept": "text/event-stream" if self.call.stream else "application/json",
        }
        own = self.call.provider_keys  # the project's own provider keys (BYOK) win
        key = (own.get(provider.name) or own.get(provider.protocol)) if own else None
        key = key or provider.resolved_api_key()
        if self.upstream_protocol is WireProtocol.ANTHROPIC:
            out["anthropic-version"] = incoming.get("anthropic-version", ANTHROPIC_VERSION)
            if "anthropic-beta" in incoming:
                out["anthropic-beta"] = incoming["anthropic-beta"]
            if key:
                out["x-api-key"] = key
        elif key:
            out["authorization"] = f"Bearer {key}"
        if not key:
            _forward_caller_credentials(incoming, out)
        out.update(provider.headers)
        return out


def _forward_caller_credentials(incoming: dict[str, str], out: dict[str, str]) -> None:
    """A provider configured without a key uses the caller's own credentials, unchanged.

    Tollhouse's own keys (``th_…``) identify a project here and are never sent upstream.
    """
    for name in ("x-api-key", "authorization"):
        value = incoming.get(name)
        if value and not value.removeprefix("Bearer ").startswith("th_"):
            out[name] = value
    for name, value in incoming.items():
        if name.startswith("openai-"):
            out[name] = value


class OpenAIPassthrough(Exchange):
    """OpenAI client, OpenAI-protocol provider: chat, completions, embeddings."""

    upstream_protocol = WireProtocol.OPENAI

    def upstream_path(self) -> str:
        return self.call.endpoint.value.removeprefix("/v1")

    def upstream_body(self) -> bytes:
        call = self.call
        # A shallow copy: a fallback provider must start from the caller's body, not this one's.
        body = dict(call.body)
        changed = call.body_changed
        if self.route.upstream_model != call.model:
            body["model"] = self.route.upstream_model
            changed = True
        if call.stream and not call.client_wants_usage:
            # Ask for the usage chunk even though the client did not; the tap hides it again.
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            changed = True
        return orjson.dumps(body) if changed else call.raw_body

    def parse(self, raw: bytes) -> Answer:
        body = _object(raw)
        usage = body.get("usage")
        tier = body.get("service_tier")
        return Answer(
            body=body if self.call.endpoint is Endpoint.CHAT else raw,
            usage=from_openai(usage if isinstance(usage, dict) else None),
            model=body.get("model") if isinstance(body.get("model"), str) else None,
            service_tier=tier if isinstance(tier, str) else None,
        )

    def tap(self) -> StreamTap:
        return _OpenAIStreamTap(self.call)


class AnthropicPassthrough(Exchange):
    """Anthropic client, Anthropic provider: bytes both ways, thinking blocks and all."""

    upstream_protocol = WireProtocol.ANTHROPIC

    def upstream_path(self) -> str:
        return self.call.endpoint.value

    def upstream_body(self) -> bytes:
        call = self.call
        if self.route.upstream_model != call.model:
            return orjson.dumps({**call.body, "model": self.route.upstream_model})
        return orjson.dumps(call.body) if call.body_changed else call.raw_body

    def parse(self, raw: bytes) -> Answer:
        body = _object(raw)
        if self.call.endpoint is Endpoint.COUNT_TOKENS:
            return Answer(body=raw, usage=Usage(), model=None, service_tier=None)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
        tier = usage.get("service_tier") if usage else None
        return Answer(
            body=raw,
            usage=from_anthropic(usage),
            model=body.get("model") if isinstance(body.get("model"), str) else None,
            service_tier=tier if isinstance(tier, str) else None,
        )

    def tap(self) -> StreamTap:
        return _AnthropicStreamTap(self.call)


class ChatViaAnthropic(Exchange):
    """OpenAI chat client, Anthropic provider."""

    upstream_protocol = WireProtocol.ANTHROPIC

    def upstream_path(self) -> str:
        return "/v1/messages"

    def upstream_body(self) -> bytes:
        return orjson.dumps(chat_request_to_messages(self.call.body, self.route.upstream_model))

    def parse(self, raw: bytes) -> Answer:
        body = _object(raw)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
        tier = usage.get("service_tier") if usage else None
        return Answer(
            body=messages_response_to_chat(body, self.call.model),
            usage=from_anthropic(usage),
            model=body.get("model") if isinstance(body.get("model"), str) else None,
            service_tier=tier if isinstance(tier, str) else None,
        )

    def tap(self) -> StreamTap:
        return _TranslatingAnthropicTap(self.call)


class MessagesViaOpenAI(Exchange):
    """Anthropic client (Claude Code), OpenAI-protocol provider."""

    upstream_protocol = WireProtocol.OPENAI

    def upstream_path(self) -> str:
        return "/chat/completions"

    def upstream_body(self) -> bytes:
        return orjson.dumps(messages_request_to_chat(self.call.body, self.route.upstream_model))

    def parse(self, raw: bytes) -> Answer:
        body = _object(raw)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
        tier = body.get("service_tier")
        return Answer(
            body=orjson.dumps(chat_response_to_messages(body, self.call.model)),
            usage=from_openai(usage),
            model=body.get("model") if isinstance(body.get("model"), str) else None,
            service_tier=tier if isinstance(tier, str) else None,
        )

    def tap(self) -> StreamTap:
        return _TranslatingOpenAITap(self.call)


def exchange_for(call: Call, route: Route) -> Exchange | None:
    """The exchange for this call on this provider, or None when the provider cannot serve it."""
    upstream = WireProtocol(route.provider.protocol)
    if call.endpoint.protocol is WireProtocol.OPENAI:
        if upstream is WireProtocol.OPENAI:
            return OpenAIPassthrough(call, route)
        return ChatViaAnthropic(call, route) if call.endpoint is Endpoint.CHAT else None
    if upstream is WireProtocol.ANTHROPIC:
        return AnthropicPassthrough(call, route)
    return MessagesViaOpenAI(call, route) if call.endpoint is Endpoint.MESSAGES else None


class _PartialCounter:
    """What a stream cut short still tells us: the prompt (estimated) and the text seen."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.output_chars = 0

    def estimate(self, known: Usage | None) -> Usage:
        if known is not None and (
            known.input_tokens or known.cache_read_tokens or known.cache_write_5m_tokens
        ):
            return Usage(
                known.input_tokens,
                known.cache_read_tokens,
                known.cache_write_5m_tokens,
                known.cache_write_1h_tokens,
                max(known.output_tokens, tokens_in_text(self.output_chars)),
            )
        return Usage(
            input_tokens=prompt_tokens(self._call.body), output_tokens=tokens_in_text(self.output_chars)
        )


class _OpenAIStreamTap:
    def __init__(self, call: Call) -> None:
        self._hide_usage = not call.client_wants_usage
        self._reported: Usage | None = None
        self._partial = _PartialCounter(call)
        self.model: str | None = None
        self.service_tier: str | None = None
        self.completed = False
        self.error: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        return self._reported if self._reported is not None else self._partial.estimate(None)

    @property
    def usage_is_reported(self) -> bool:
        return self._reported is not None

    def feed(self, event: SSEEvent) -> list[bytes]:
        if event.is_done:
            self.completed = True
            return [event.raw]
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [event.raw]
        if not isinstance(chunk, dict):
            return [event.raw]
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                text = delta.get("content") if isinstance(delta, dict) else None
                if not isinstance(text, str) and isinstance(choice, dict):
                    text = choice.get("text")  # legacy completions
                if isinstance(text, str):
                    self._partial.output_chars += len(text)
        if "usage" not in chunk:
            return [event.raw]
        usage = chunk["usage"]
        if isinstance(usage, dict):
            self._reported = from_openai(usage)
            if isinstance(chunk.get("service_tier"), str):
                self.service_tier = chunk["service_tier"]
        if not self._hide_usage:
            return [event.raw]
        if isinstance(usage, dict) and not choices:
            return []  # the chunk only we asked for
        del chunk["usage"]
        return [encode(orjson.dumps(chunk))]

    def finish(self) -> list[bytes]:
        return []


class _AnthropicStreamTap:
    def __init__(self, call: Call) -> None:
        self._raw_usage: dict[str, Any] | None = None
        self._saw_delta_usage = False
        self._partial = _PartialCounter(call)
        self.model: str | None = None
        self.service_tier: str | None = None
        self.completed = False
        self.error: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        known = from_anthropic(self._raw_usage) if self._raw_usage is not None else None
        if self.completed and known is not None:
            return known
        return self._partial.estimate(known) if not self._saw_delta_usage else (known or Usage())

    @property
    def usage_is_reported(self) -> bool:
        return self._raw_usage is not None and self._saw_delta_usage

    def feed(self, event: SSEEvent) -> list[bytes]:
        if event.event in (None, "ping"):
            return [event.raw]
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [event.raw]
        self.observe(event.event, data)
        return [event.raw]

    def observe(self, name: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            return
        kind = data.get("type", name)
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") if isinstance(message.get("model"), str) else None
            usage = message.get("usage")
            if isinstance(usage, dict):
                self._raw_usage = dict(usage)
                tier = usage.get("service_tier")
                self.service_tier = tier if isinstance(tier, str) else None
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            for key in ("text", "thinking", "partial_json"):
                value = delta.get(key)
                if isinstance(value, str):
                    self._partial.output_chars += len(value)
        elif kind == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                # Cumulative counts: later values replace earlier ones, field by field.
                merged = dict(self._raw_usage or {})
                merged.update({k: v for k, v in usage.items() if v is not None})
                self._raw_usage = merged
                self._saw_delta_usage = True
        elif kind == "message_stop":
            self.completed = True
        elif kind == "error":
            error = data.get("error")
            self.error = error if isinstance(error, dict) else {"message": str(error)}

    def finish(self) -> list[bytes]:
        return []


class _TranslatingAnthropicTap:
    """Anthropic events in, OpenAI chunks out."""

    def __init__(self, call: Call) -> None:
        self._reader = _AnthropicStreamTap(call)
        self._translator = MessagesStreamToChat(call.model, call.client_wants_usage)
        self.service_tier: str | None = None
        self.error: dict[str, Any] | None = None

    @property
    def model(self) -> str | None:
        return self._reader.model

    @property
    def completed(self) -> bool:
        return self._reader.completed

    @property
    def usage(self) -> Usage:
        return self._reader.usage

    @property
    def usage_is_reported(self) -> bool:
        return self._reader.usage_is_reported

    def feed(self, event: SSEEvent) -> list[bytes]:
        if event.event == "ping" or not event.data:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return []
        self._reader.observe(event.event, data)
        self.service_tier = self._reader.service_tier
        self.error = self._reader.error
        name = event.event or (data.get("type") if isinstance(data, dict) else None) or ""
        out = [encode(orjson.dumps(chunk)) for chunk in self._translator.feed(name, data)]
        if self._reader.completed:
            out.append(_DONE)
        return out

    def finish(self) -> list[bytes]:
        return []


class _TranslatingOpenAITap:
    """OpenAI chunks in, Anthropic events out."""

    def __init__(self, call: Call) -> None:
        self._translator = ChatStreamToMessages(call.model)
        self._partial = _PartialCounter(call)
        self._finished = False
        self._saw_usage = False
        self.model: str | None = None
        self.service_tier: str | None = None
        self.completed = False
        self.error: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        return self._translator.usage if self._saw_usage else self._partial.estimate(None)

    @property
    def usage_is_reported(self) -> bool:
        return self._saw_usage

    def feed(self, event: SSEEvent) -> list[bytes]:
        if event.is_done:
            self.completed = True
            return self.finish()
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            return []
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self._saw_usage = True
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                self._partial.output_chars += len(delta["content"])
        return [encode(orjson.dumps(data), name) for name, data in self._translator.feed(chunk)]

    def finish(self) -> list[bytes]:
        if self._finished:
            return []
        self._finished = True
        return [encode(orjson.dumps(data), name) for name, data in self._translator.finish()]
