"""What the semantic cache compares: the scope (matched exactly) and the text (matched by meaning).

The text is the whole conversation, every turn as ``role: content`` plus the names of the
offered tools, never only the last message: "and in Rust?" means different things after
different questions (GPTCache's ``last_content`` default gets this wrong). The system prompt
goes into the scope instead, matched byte for byte along with the project, the served model
and every parameter: it is stricter than embedding it, and it keeps the embedded text inside the
model's 256-token window. A conversation with images, documents or audio is not eligible: its
text alone does not say what was asked.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tollhouse.cache.key import canonical_request

SEMANTIC_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/messages"})
_SYSTEM_ROLES = ("system", "developer")


class _NotText(Exception):
    """The conversation carries something other than text."""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _NotText
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
            continue
        if not isinstance(part, dict):
            raise _NotText
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(str(part.get("text", "")))
        elif kind == "tool_use":
            parts.append(f"[tool_use {part.get('name')} {orjson.dumps(part.get('input')).decode()}]")
        elif kind == "tool_result":
            parts.append(f"[tool_result {_content_text(part.get('content'))}]")
        elif kind in ("thinking", "redacted_thinking"):
            continue  # the model's own reasoning: not part of what was asked
        else:
            raise _NotText
    return "\n".join(parts)


def _turn(message: dict[str, Any]) -> str:
    role = str(message.get("role", "user"))
    text = _content_text(message.get("content"))
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            fn = call["function"]
            text += f"\n[tool_call {fn.get('name')} {fn.get('arguments')}]"
    return f"{role}: {text}"


def _tool_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            fn = tool.get("function")
            name = fn.get("name") if isinstance(fn, dict) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
    return names


def conversation_text(endpoint: str, body: dict[str, Any]) -> str | None:
    """The conversation as one text to embed, or None when it is not eligible."""
    if endpoint not in SEMANTIC_ENDPOINTS:
        return None
    try:
        if endpoint == "/v1/completions":
            prompt = body.get("prompt")
            return prompt if isinstance(prompt, str) and prompt.strip() else None
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        turns = [_turn(m) for m in messages if isinstance(m, dict) and m.get("role") not in _SYSTEM_ROLES]
    except _NotText:
        return None
    if not turns:
        return None
    names = _tool_names(body)
    if names:
        turns.append("tools: " + ", ".join(names))
    return "\n".join(turns)


def semantic_scope(project_id: str, served_model: str, endpoint: str, body: dict[str, Any]) -> str:
    """``<project>:<sha256>`` over everything but the conversation turns (system prompt included)."""
    messages = body.get("messages")
    system: list[Any] = [body.get("system")]
    if isinstance(messages, list):
        system += [m for m in messages if isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES]
    params = {k: v for k, v in body.items() if k not in ("messages", "prompt", "system")}
    params["__system__"] = system
    digest = hashlib.sha256(canonical_request(project_id, served_model, endpoint, params)).hexdigest()
    return f"{project_id}:{digest}"
