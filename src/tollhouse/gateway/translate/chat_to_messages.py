"""A client speaking OpenAI Chat Completions, an upstream speaking Anthropic Messages.

Best effort where the protocols differ, loud where they cannot meet:

- Fields Anthropic has no use for (``logprobs``, ``seed``, penalties, ``stream_options``,
  ``response_format`` text/json_object, ...) are dropped; ``n`` other than 1 is refused.
- ``temperature`` is clamped to Anthropic's 0..1. With thinking on, ``temperature`` and
  ``top_p`` are dropped because Anthropic refuses them beside thinking.
- A thinking budget must fit under ``max_tokens``; OpenAI counts reasoning inside
  ``max_completion_tokens``, so an explicit cap shrinks the budget (thinking is left off
  when under 1024 tokens would remain) and an absent one becomes 4096 plus the budget.
- Tool arguments that are not a JSON object (malformed, or an array) become
  ``{"_raw": "<the string>"}`` rather than an error: a bad argument string written by a
  model must not fail the next turn. ``tool_input_to_arguments`` turns it back unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollhouse.errors import InvalidParameter, InvalidRequest, MissingField
from tollhouse.ids import new_id
from tollhouse.pricing.usage import from_anthropic, to_openai

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768, "max": 32768}
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
RAW_ARGUMENTS_KEY = "_raw"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def tool_arguments_to_input(arguments: Any) -> dict[str, Any]:
    """OpenAI's ``arguments`` JSON string as Anthropic's ``input`` object (see module doc)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if not isinstance(arguments, str):
        return {RAW_ARGUMENTS_KEY: str(arguments)}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {RAW_ARGUMENTS_KEY: arguments}
    return parsed if isinstance(parsed, dict) else {RAW_ARGUMENTS_KEY: arguments}


def tool_use_to_call(block: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic ``tool_use`` block as an OpenAI ``tool_calls`` entry."""
    return {
        "id": block.get("id", ""),
        "type": "function",
        "function": {"name": block.get("name", ""), "arguments": tool_input_to_arguments(block.get("input"))},
    }


def tool_input_to_arguments(tool_input: Any) -> str:
    """Anthropic's ``input`` as OpenAI's ``arguments`` string; a ``_raw`` wrapper unwraps."""
    if isinstance(tool_input, dict) and len(tool_input) == 1:
        raw = tool_input.get(RAW_ARGUMENTS_KEY)
        if isinstance(raw, str):
            return raw
    return orjson.dumps(tool_input if tool_input is not None else {}).decode()


# -- request ---------------------------------------------------------------------------------


def chat_request_to_messages(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise MissingField("messages is required and must be an array", param="messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidParameter("n must be 1 for this model", param="n")

    system_blocks: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidParameter(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system_blocks.extend(_text_blocks(message.get("content"), f"messages[{index}].content"))
        elif role == "user":
            _append_turn(turns, "user", _user_blocks(message.get("content"), f"messages[{index}].content"))
        elif role == "assistant":
            _append_turn(turns, "assistant", _assistant_blocks(message, index))
        elif role == "tool":
            _append_turn(turns, "user", [_tool_result(message, index)])
        else:
            raise InvalidParameter(f"messages[{index}].role {role!r} is not supported", param="messages")
    if not turns:
        raise InvalidRequest("messages must hold at least one user or assistant message", param="messages")
    _strip_final_assistant_whitespace(turns)

    out: dict[str, Any] = {"model": upstream_model, "messages": [_compact(turn) for turn in turns]}
    if system_blocks:
        plain = len(system_blocks) == 1 and set(system_blocks[0]) == {"type", "text"}
        out["system"] = system_blocks[0]["text"] if plain else system_blocks

    explicit_max = body.get("max_completion_tokens")
    if explicit_max is None:
        explicit_max = body.get("max_tokens")
    if explicit_max is not None and (not isinstance(explicit_max, int) or explicit_max < 1):
        raise InvalidParameter("max_tokens must be a positive integer", param="max_tokens")
    thinking = _thinking(body)
    if thinking is not None and thinking.get("type") == "enabled":
        budget = thinking["budget_tokens"]
        if explicit_max is None:
            out["max_tokens"] = DEFAULT_MAX_TOKENS + budget
        else:
            out["max_tokens"] = explicit_max
            budget = min(budget, explicit_max - 1)
            thinking = {**thinking, "budget_tokens": budget} if budget >= MIN_THINKING_BUDGET else None
    else:
        out["max_tokens"] = explicit_max if explicit_max is not None else DEFAULT_MAX_TOKENS
    thinking_on = thinking is not None and thinking.get("type") != "disabled"
    if thinking is not None:
        out["thinking"] = thinking

    if not thinking_on:
        temperature = body.get("temperature")
        if isinstance(temperature, int | float):
            out["temperature"] = min(max(float(temperature), 0.0), 1.0)
        if body.get("top_p") is not None:
            out["top_p"] = body["top_p"]
        if body.get("top_k") is not None:
            out["top_k"] = body["top_k"]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = list(stop)
    if body.get("stream"):
        out["stream"] = True
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        out["output_config"] = {"format": output_format}

    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and choice.get("type") != "none":
            choice["disable_parallel_tool_use"] = True
        if choice != {"type": "auto"}:
            out["tool_choice"] = choice
    return out


def _append_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Anthropic wants alternating roles, and tool results first in a user turn."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})
    if role == "user":
        content = turns[-1]["content"]
        content.sort(key=lambda block: block.get("type") != "tool_result")


def _compact(turn: dict[str, Any]) -> dict[str, Any]:
    content = turn["content"]
    if len(content) == 1 and set(content[0]) == {"type", "text"}:
        return {"role": turn["role"], "content": content[0]["text"]}
    return turn


def _strip_final_assistant_whitespace(turns: list[dict[str, Any]]) -> None:
    """Anthropic refuses a prefilled assistant turn that ends in whitespace."""
    last = turns[-1]
    if last["role"] != "assistant" or last["content"][-1].get("type") != "text":
        return
    block = last["content"][-1]
    block["text"] = block["text"].rstrip()
    if not block["text"]:
        last["content"].pop()
        if not last["content"]:
            turns.pop()


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidParameter(f"{where} must be a string or an array", param=where)
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
            raise InvalidParameter(f"{where} may only hold text parts", param=where)
        text = part.get("text", part.get("refusal"))
        if isinstance(text, str) and text:
            blocks.append(_with_cache_control({"type": "text", "text": text}, part))
    return blocks


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_blocks(content, where)
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            blocks.append(_with_cache_control(_image_block(part.get("image_url"), where), part))
        elif kind == "file":
            blocks.append(_with_cache_control(_document_block(part.get("file"), where), part))
        elif kind in ("text", "refusal") or isinstance(part, str):
            blocks.extend(_text_blocks([part], where))
        else:
            raise InvalidParameter(
                f"{where}: content part {kind!r} is not supported by this model", param=where
            )
    return blocks


def _with_cache_control(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Keep a client's Anthropic-style ``cache_control`` hint: prompt caching saves money."""
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _split_data_url(url: str, where: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidParameter(f"{where}: data URLs must be base64-encoded", param=where)
    return header[len("data:") : -len(";base64")], data


def _image_block(image_url: Any, where: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise InvalidParameter(f"{where}: image_url.url is required", param=where)
    if url.startswith("data:"):
        media_type, data = _split_data_url(url, where)
        if media_type not in IMAGE_MEDIA_TYPES:
            raise InvalidParameter(f"{where}: image type {media_type!r} is not supported", param=where)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document_block(file: Any, where: str) -> dict[str, Any]:
    file_data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(file_data, str) or not file_data.startswith("data:"):
        raise InvalidParameter(f"{where}: only inline file_data (a data: URL) can be forwarded", param=where)
    media_type, data = _split_data_url(file_data, where)
    if media_type != "application/pdf":
        raise InvalidParameter(f"{where}: file type {media_type!r} is not supported", param=where)
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    blocks = _text_blocks(message.get("content"), f"messages[{index}].content")
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidParameter(
                f"messages[{index}].tool_calls: each call needs function.name", param="messages"
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu"),
                "name": function["name"],
                "input": tool_arguments_to_input(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: dict[str, Any], index: int) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise MissingField(f"messages[{index}].tool_call_id is required", param="messages")
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(content, list):
        block["content"] = _text_blocks(content, f"messages[{index}].content")
    else:
        block["content"] = content if isinstance(content, str) else ""
    return block


def _thinking(body: dict[str, Any]) -> dict[str, Any] | None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
                raise InvalidParameter("thinking.budget_tokens must be an integer >= 1024", param="thinking")
            return dict(thinking)
        if kind in ("disabled", "adaptive"):
            return dict(thinking)
        raise InvalidParameter(f"thinking.type {kind!r} is not supported", param="thinking")
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if effort not in EFFORT_BUDGETS:
        raise InvalidParameter(f"reasoning_effort {effort!r} is not supported", param="reasoning_effort")
    return {"type": "enabled", "budget_tokens": EFFORT_BUDGETS[effort]}


def _output_format(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise InvalidParameter("response_format.json_schema.schema is required", param="response_format")
    return {"type": "json_schema", "schema": schema}


def _tool(tool: Any, index: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidParameter(
            f"tools[{index}]: only function tools with a name are supported", param="tools"
        )
    out: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise InvalidParameter(
        "tool_choice is not one of auto, none, required or a function", param="tool_choice"
    )


# -- response --------------------------------------------------------------------------------


def messages_response_to_chat(resp: dict[str, Any], model: str) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in resp.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use":
            tool_calls.append(tool_use_to_call(block))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return {
        "id": "chatcmpl-" + str(resp.get("id", "")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(resp.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": to_openai(from_anthropic(resp.get("usage"))),
    }
