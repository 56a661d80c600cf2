"""Rebuild the whole answer from a streamed one, so a streamed miss can fill the cache.

It reads the bytes the *client* received (after any protocol translation), so the cached body
is in the client's wire format. It gives up (``result()`` is None) on anything it should not
cache: tool calls, an error event, or a stream that never reached its end.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollhouse.gateway.sse import SSEParser
from tollhouse.pricing.usage import Usage, to_anthropic, to_openai

_CHAT_TEXT_FIELDS = ("content", "refusal", "reasoning_content")


class StreamAccumulator:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._parser = SSEParser()
        self._refused = False
        self._completed = False
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, Any] | None = None
        self._blocks: dict[int, dict[str, Any]] = {}
        self._message: dict[str, Any] | None = None

    @property
    def cacheable(self) -> bool:
        return self._completed and not self._refused

    def feed(self, chunk: bytes) -> None:
        if self._refused:
            return
        for event in self._parser.feed(chunk):
            if event.is_done:
                self._completed = self._completed or self.endpoint != "/v1/messages"
                continue
            if not event.data:
                continue
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                self._refused = True
                return
            if not isinstance(data, dict) or "error" in data or data.get("type") == "error":
                self._refused = True
                return
            if self.endpoint == "/v1/messages":
                self._anthropic(data)
            else:
                self._openai(data)

    def result(self, usage: Usage | None = None) -> bytes | None:
        """The equivalent non-streamed body, or None; ``usage`` fills in usage the client was not sent."""
        if not self.cacheable:
            return None
        if self.endpoint == "/v1/messages":
            return self._anthropic_body(usage)
        return self._openai_body(usage)

    # OpenAI chat and legacy completions

    def _openai(self, chunk: dict[str, Any]) -> None:
        if not self._head:
            self._head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            slot = self._choices.setdefault(int(choice.get("index", 0)), {"parts": {}, "finish_reason": None})
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("tool_calls") or delta.get("function_call"):
                    self._refused = True
                    return
                if isinstance(delta.get("role"), str):
                    slot["role"] = delta["role"]
                for field in _CHAT_TEXT_FIELDS:
                    if isinstance(delta.get(field), str):
                        slot["parts"].setdefault(field, []).append(delta[field])
            elif isinstance(choice.get("text"), str):
                slot["parts"].setdefault("text", []).append(choice["text"])
            if choice.get("finish_reason") is not None:
                slot["finish_reason"] = choice["finish_reason"]
                if choice["finish_reason"] in ("tool_calls", "function_call"):
                    self._refused = True

    def _openai_body(self, usage: Usage | None) -> bytes:
        chat = self.endpoint == "/v1/chat/completions"
        choices = []
        for index in sorted(self._choices):
            slot = self._choices[index]
            texts = {field: "".join(parts) for field, parts in slot["parts"].items()}
            if chat:
                message: dict[str, Any] = {
                    "role": slot.get("role", "assistant"),
                    "content": texts.get("content"),
                }
                message["refusal"] = texts.get("refusal")
                if "reasoning_content" in texts:
                    message["reasoning_content"] = texts["reasoning_content"]
                choices.append(
                    {
                        "index": index,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": slot["finish_reason"],
                    }
                )
            else:
                choices.append(
                    {
                        "text": texts.get("text", ""),
                        "index": index,
                        "logprobs": None,
                        "finish_reason": slot["finish_reason"],
                    }
                )
        body: dict[str, Any] = {
            "id": self._head.get("id", ""),
            "object": "chat.completion" if chat else "text_completion",
            "created": self._head.get("created", 0),
            "model": self._head.get("model", ""),
            "choices": choices,
        }
        if "system_fingerprint" in self._head:
            body["system_fingerprint"] = self._head["system_fingerprint"]
        reported = (
            self._usage if self._usage is not None else (to_openai(usage) if usage is not None else None)
        )
        if reported is not None:
            body["usage"] = reported
        return orjson.dumps(body)

    # Anthropic messages

    def _anthropic(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self._message = dict(data["message"])
            self._usage = dict(self._message.get("usage") or {})
        elif kind == "content_block_start":
            block = dict(data.get("content_block") or {})
            if block.get("type") in ("tool_use", "server_tool_use"):
                self._refused = True
                return
            self._blocks[int(data.get("index", 0))] = block
        elif kind == "content_block_delta":
            self._anthropic_delta(int(data.get("index", 0)), data.get("delta") or {})
        elif kind == "message_delta":
            if self._message is not None and isinstance(data.get("delta"), dict):
                self._message.update(data["delta"])
            if isinstance(data.get("usage"), dict):
                merged = dict(self._usage or {})
                merged.update({k: v for k, v in data["usage"].items() if v is not None})
                self._usage = merged
        elif kind == "message_stop":
            self._completed = self._message is not None

    def _anthropic_delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self._blocks.setdefault(index, {"type": "text", "text": ""})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + str(delta.get("text", ""))
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
        elif kind == "signature_delta":
            block["signature"] = block.get("signature", "") + str(delta.get("signature", ""))
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))
        else:  # input_json_delta belongs to a tool call; anything unknown is not ours to rebuild
            self._refused = True

    def _anthropic_body(self, usage: Usage | None) -> bytes:
        assert self._message is not None
        body = dict(self._message)
        body["content"] = [self._blocks[i] for i in sorted(self._blocks)]
        body["usage"] = self._usage if self._usage else (to_anthropic(usage) if usage is not None else {})
        return orjson.dumps(body)
