"""An upstream streaming Anthropic Messages events to a client that asked for an OpenAI Chat
Completions stream: one Anthropic SSE event in, the ``chat.completion.chunk`` dicts it makes out.
"""

from __future__ import annotations

import time
from typing import Any

from tollhouse.gateway.translate.chat_to_messages import FINISH_REASONS
from tollhouse.ids import new_id
from tollhouse.pricing.usage import Usage, from_anthropic, to_openai


class MessagesStreamToChat:
    """Anthropic SSE events in, OpenAI ``chat.completion.chunk`` dicts out, one event at a time."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.error: dict[str, Any] | None = None
        self._id = ""
        self._created = int(time.time())
        self._raw_usage: dict[str, Any] = {}
        self._tool_indexes: dict[int, int] = {}

    @property
    def usage(self) -> Usage:
        return from_anthropic(self._raw_usage)

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type", event)
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = "chatcmpl-" + str(message.get("id", ""))
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(data.get("index", 0), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(data.get("index", 0), data.get("delta") or {})
        if kind == "message_delta":
            self._merge_usage(data.get("usage"))
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason is None:
                return []
            return [self._chunk({}, FINISH_REASONS.get(stop_reason, "stop"))]
        if kind == "message_stop":
            if not self.include_usage:
                return []
            chunk = self._chunk({})
            chunk["choices"] = []
            chunk["usage"] = to_openai(self.usage)
            return [chunk]
        if kind == "error":
            error = data.get("error")
            self.error = error if isinstance(error, dict) else data
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use":
            position = len(self._tool_indexes)
            self._tool_indexes[index] = position
            call = {
                "index": position,
                "id": block.get("id", ""),
                "type": "function",
                "function": {"name": block.get("name", ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self._tool_indexes:
            call = {"index": self._tool_indexes[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _merge_usage(self, usage: Any) -> None:
        """message_delta counts are cumulative: a field it carries replaces message_start's."""
        if isinstance(usage, dict):
            self._raw_usage.update({key: value for key, value in usage.items() if value is not None})

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        if not self._id:
            self._id = "chatcmpl-" + new_id("msg")
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
