"""Stream taps: read the usage out of a provider's SSE stream while turning its events into the
bytes the client gets (unchanged for a same-protocol stream, translated for a cross-protocol one).

A stream cut short still yields a usage: what the provider reported so far, completed with an
estimate of the text relayed (``PartialCounter``), so a client that leaves mid-stream is charged.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from tollhouse.gateway.call import Call
from tollhouse.gateway.estimate import prompt_tokens, tokens_in_text
from tollhouse.gateway.sse import SSEEvent, encode
from tollhouse.gateway.translate import ChatStreamToMessages, MessagesStreamToChat
from tollhouse.pricing.usage import Usage, from_anthropic, from_openai

_DONE = b"data: [DONE]\n\n"


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


class PartialCounter:
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


class OpenAIStreamTap:
    def __init__(self, call: Call) -> None:
        self._hide_usage = not call.client_wants_usage
        self._reported: Usage | None = None
        self._partial = PartialCounter(call)
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


class AnthropicStreamTap:
    def __init__(self, call: Call) -> None:
        self._raw_usage: dict[str, Any] | None = None
        self._saw_delta_usage = False
        self._partial = PartialCounter(call)
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


class AnthropicToOpenAITap:
    """Anthropic events in, OpenAI chunks out."""

    def __init__(self, call: Call) -> None:
        self._reader = AnthropicStreamTap(call)
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


class OpenAIToAnthropicTap:
    """OpenAI chunks in, Anthropic events out."""

    def __init__(self, call: Call) -> None:
        self._translator = ChatStreamToMessages(call.model)
        self._partial = PartialCounter(call)
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
