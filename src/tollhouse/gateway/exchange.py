"""How one call crosses to one provider: the upstream request, and how its answer comes back.

There is one exchange per pairing of client protocol and provider protocol. Same-protocol
exchanges pass bytes through and only read the usage; cross-protocol ones translate both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.errors import UpstreamError
from tollhouse.gateway.call import Call, Endpoint
from tollhouse.gateway.call import Protocol as WireProtocol
from tollhouse.gateway.providers import Route
from tollhouse.gateway.taps import (
    AnthropicStreamTap,
    AnthropicToOpenAITap,
    OpenAIStreamTap,
    OpenAIToAnthropicTap,
    StreamTap,
)
from tollhouse.gateway.translate import (
    chat_request_to_messages,
    chat_response_to_messages,
    messages_request_to_chat,
    messages_response_to_chat,
)
from tollhouse.pricing.usage import Usage, from_anthropic, from_openai

ANTHROPIC_VERSION = "2023-06-01"


@dataclass(slots=True)
class Answer:
    """A whole (non-streamed) answer, ready for the client."""

    body: dict[str, Any] | bytes
    usage: Usage
    model: str | None
    service_tier: str | None


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
        return OpenAIStreamTap(self.call)


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
        return AnthropicStreamTap(self.call)


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
        return AnthropicToOpenAITap(self.call)


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
        return OpenAIToAnthropicTap(self.call)


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
