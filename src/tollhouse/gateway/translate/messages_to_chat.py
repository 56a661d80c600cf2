"""A client speaking Anthropic Messages, an upstream speaking OpenAI Chat Completions.

Best effort where the protocols differ, loud where they cannot meet:

- Thinking goes nowhere in either direction. Thinking blocks in the history are dropped
  (OpenAI cannot take them) and so is ``thinking`` itself (``reasoning_effort`` is refused
  by non-reasoning models). An upstream's ``reasoning_content`` is not turned into thinking
  blocks either: Anthropic checks the signature of thinking blocks sent back in a tool loop,
  and a translated block could not carry one, so a conversation moved to Claude would fail.
- Server tools (web search, code execution, ...) are refused; their blocks in the history
  are dropped, as are ``top_k``, ``cache_control`` and ``tool_result.is_error``.
- Images inside a ``tool_result`` cannot ride on an OpenAI ``tool`` message, so they follow
  in the next user message.
- Tool arguments that are not a JSON object become ``{"_raw": "<the string>"}`` in
  ``tool_use.input`` (see ``chat_to_messages``), never an error: the upstream already ran.
"""

from __future__ import annotations

from typing import Any

from tollhouse.errors import InvalidParameter, MissingField
from tollhouse.gateway.translate.chat_to_messages import (
    tool_arguments_to_input,
    tool_use_to_call,
)
from tollhouse.ids import new_id
from tollhouse.pricing.usage import Usage, from_openai, to_anthropic

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# -- request ---------------------------------------------------------------------------------


def messages_request_to_chat(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise MissingField("messages is required and must be an array", param="messages")

    chat: list[dict[str, Any]] = []
    system = _system_text(body.get("system"))
    if system:
        chat.append({"role": "system", "content": system})
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            chat.extend(_user_messages(message.get("content"), f"messages[{index}].content"))
        elif role == "assistant":
            chat.extend(_assistant_messages(message.get("content")))
        else:
            raise InvalidParameter(f"messages[{index}].role must be user or assistant", param="messages")

    out: dict[str, Any] = {"model": upstream_model, "messages": chat}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            out[field] = body[field]
    stop = body.get("stop_sequences")
    if isinstance(stop, list) and stop:
        out["stop"] = list(stop)
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    user_id = (body.get("metadata") or {}).get("user_id")
    if isinstance(user_id, str) and user_id:
        out["user"] = user_id
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": output_format.get("schema") or {}},
        }

    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
        choice = body.get("tool_choice")
        if choice is not None:
            out["tool_choice"] = _tool_choice(choice)
            if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
                out["parallel_tool_calls"] = False
    return out


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(
            block["text"]
            for block in system
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        )
    return ""


def _user_messages(content: Any, where: str) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages, placed first: OpenAI wants them right after the call."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise InvalidParameter(f"{where} must be a string or an array", param=where)
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            text, extra = _tool_result_content(block.get("content"), where)
            tool_messages.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
            parts.extend(extra)
        else:
            parts.extend(_user_parts(block, where))
    if not parts:
        return tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tool_messages, {"role": "user", "content": parts[0]["text"]}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _tool_result_content(content: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    extra: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(block.get("text", ""))
        else:
            extra.extend(_user_parts(block, where))
    return "\n".join(texts), extra


def _user_parts(block: Any, where: str) -> list[dict[str, Any]]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return [{"type": "text", "text": block["text"]}] if block.get("text") else []
    if kind == "image":
        return [{"type": "image_url", "image_url": {"url": _source_url(block.get("source"), where)}}]
    if kind == "document":
        return [_document_part(block, where)]
    if kind in ("thinking", "redacted_thinking"):
        return []
    raise InvalidParameter(f"{where}: block type {kind!r} is not supported by this model", param=where)


def _source_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    if kind == "url":
        return str(source["url"])
    raise InvalidParameter(f"{where}: source type {kind!r} is not supported by this model", param=where)


def _document_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return {"type": "text", "text": source.get("data", "")}
    if source.get("type") == "base64":
        file: dict[str, Any] = {"file_data": _source_url(source, where)}
        file["filename"] = block.get("title") or "document.pdf"
        return {"type": "file", "file": file}
    raise InvalidParameter(f"{where}: this document source is not supported by this model", param=where)


def _assistant_messages(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            tool_calls.append(tool_use_to_call(block))
    if not texts and not tool_calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return [message]


def _tool(tool: Any, index: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom") or "name" not in tool:
        raise InvalidParameter(
            f"tools[{index}]: only custom tools are supported by this model", param="tools"
        )
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidParameter("tool_choice is not one of auto, any, tool or none", param="tool_choice")


# -- response --------------------------------------------------------------------------------


def _message_id(chat_id: Any) -> str:
    if not isinstance(chat_id, str) or not chat_id:
        return new_id("msg")
    bare = chat_id.removeprefix("chatcmpl-")
    return bare if bare.startswith("msg_") else "msg_" + bare


def chat_response_to_messages(resp: dict[str, Any], model: str) -> dict[str, Any]:
    choices = resp.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(part.get("text", "") for part in text if isinstance(part, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        content.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu"),
                "name": function.get("name", ""),
                "input": tool_arguments_to_input(function.get("arguments")),
            }
        )
    stop_reason = STOP_REASONS.get(choice.get("finish_reason") or "", "end_turn")
    if message.get("refusal"):
        stop_reason = "refusal"
    return {
        "id": _message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": to_anthropic(from_openai(resp.get("usage"))),
    }


# -- stream ----------------------------------------------------------------------------------

Event = tuple[str, dict[str, Any]]


class ChatStreamToMessages:
    """OpenAI chunks in, Anthropic SSE events out, in the order Anthropic itself sends them.

    Feed every parsed chunk, then call ``finish`` once the upstream stream ends (``[DONE]``
    or not): Anthropic's closing events carry the stop reason and the final usage, which
    OpenAI only sends at the end.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.error: dict[str, Any] | None = None
        self._started = False
        self._finished = False
        self._next_index = 0
        self._open: int | None = None
        self._open_is_text = False
        self._tool_blocks: dict[int, int] = {}
        self._tool_ids: dict[int, str] = {}
        self._refused = False
        self._finish_reason: str | None = None
        self._raw_usage: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        return from_openai(self._raw_usage)

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if self._finished:
            return []
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
            message = str(self.error.get("message") or "upstream stream failed")
            return [("error", {"type": "error", "error": {"type": "api_error", "message": message}})]
        if isinstance(chunk.get("usage"), dict):
            self._raw_usage = chunk["usage"]
        events = self._start(chunk.get("id"))
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            for field in ("content", "refusal"):
                text = delta.get(field)
                if isinstance(text, str) and text:
                    self._refused = self._refused or field == "refusal"
                    events.extend(self._text(text))
            for call in delta.get("tool_calls") or []:
                events.extend(self._tool_call(call))
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[Event]:
        if self._finished:
            return []
        self._finished = True
        events = self._start(None)
        events.extend(self._close())
        usage: dict[str, Any] = {"output_tokens": self.usage.output_tokens}
        if self._raw_usage is not None:
            usage = to_anthropic(self.usage)
        stop_reason = STOP_REASONS.get(self._finish_reason or "", "end_turn")
        if self._refused:
            stop_reason = "refusal"
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _start(self, chat_id: Any) -> list[Event]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": _message_id(chat_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**to_anthropic(self.usage), "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open_block(self, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self._open = self._next_index
        self._next_index += 1
        self._open_is_text = block["type"] == "text"
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": self._open, "content_block": block},
            )
        )
        return events

    def _text(self, text: str) -> list[Event]:
        events = (
            []
            if self._open is not None and self._open_is_text
            else self._open_block({"type": "text", "text": ""})
        )
        delta = {"type": "text_delta", "text": text}
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": self._open, "delta": delta})
        )
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[Event]:
        position = call.get("index", 0)
        function = call.get("function") or {}
        events: list[Event] = []
        call_id = call.get("id")
        # A new id at a known index means a server that leaves ``index`` out: a new call.
        if position not in self._tool_ids or (call_id and call_id != self._tool_ids[position]):
            self._tool_ids[position] = call_id or new_id("toolu")
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": self._tool_ids[position],
                "name": function.get("name") or "",
                "input": {},
            }
            self._tool_blocks[position] = self._next_index
            events.extend(self._open_block(block))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            index = self._tool_blocks[position]
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        return events
