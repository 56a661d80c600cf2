"""``GET /api/conversation/{session_id}``: a whole session, tool calls and subagents included.

Claude Code writes one line per content block of a response, each repeating the message, so
lines sharing a ``message.id`` are folded back into one message. Only unmistakable token
shapes are masked here: conversation text is code and prose, where ``KEY=…`` is often not a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson

from tollhouse.claude_code.config_inspect import mask_tokens
from tollhouse.errors import TollhouseError

_KINDS = ("user", "assistant", "system")


class UnreadableTranscript(TollhouseError):
    """The session exists on disk but its transcript cannot be read (permissions, I/O error)."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "unreadable_file"


@dataclass(frozen=True, slots=True)
class ConversationFile:
    path: Path
    is_subagent: bool
    agent_id: str | None


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_tokens(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _block(block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        return {"type": "text", "text": mask_tokens(str(block))}
    if block.get("type") == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            source = {}
        data = source.get("data")
        return {  # the picture itself stays on disk: base64 would dwarf the conversation
            "type": "image",
            "media_type": source.get("media_type"),
            "bytes": len(data) * 3 // 4 if isinstance(data, str) else None,
        }
    if block.get("type") == "thinking":
        return {"type": "thinking", "thinking": mask_tokens(str(block.get("thinking") or ""))}
    return dict(_masked(block))


def _usage_total(usage: Any) -> int:
    if not isinstance(usage, dict):
        return -1
    return sum(v for v in usage.values() if isinstance(v, int))


class _Reader:
    def __init__(self, agent_id: str | None) -> None:
        self.agent_id = agent_id
        self.messages: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.malformed = 0
        self.title: str | None = None

    def read(self, path: Path) -> None:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.startswith(b'{"type":"file-history-snapshot"') or not raw.strip():
                    continue
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    self.malformed += 1
                    continue
                if isinstance(line, dict):
                    self._take(line)

    def _take(self, line: dict[str, Any]) -> None:
        kind = line.get("type")
        if kind in ("summary", "ai-title"):
            self.title = line.get("summary") or line.get("title") or self.title
            return
        if kind not in _KINDS:
            return
        message = line.get("message") if isinstance(line.get("message"), dict) else {}
        assert isinstance(message, dict)
        content = message.get("content", line.get("content"))
        blocks = [_block(b) for b in content] if isinstance(content, list) else []
        if isinstance(content, str):
            blocks = [{"type": "text", "text": mask_tokens(content)}]
        message_id = message.get("id") if kind == "assistant" else None
        if isinstance(message_id, str) and message_id in self.by_id:
            kept = self.by_id[message_id]
            kept["content"].extend(b for b in blocks if b not in kept["content"])
            if _usage_total(message.get("usage")) > _usage_total(kept["usage"]):
                kept["usage"] = message.get("usage")
            kept["stopReason"] = message.get("stop_reason") or kept["stopReason"]
            return
        entry = {
            "uuid": line.get("uuid"),
            "parentUuid": line.get("parentUuid"),
            "type": kind,
            "role": message.get("role") or kind,
            "subtype": line.get("subtype"),
            "timestamp": line.get("timestamp"),
            "model": message.get("model"),
            "messageId": message_id,
            "requestId": line.get("requestId"),
            "content": blocks,
            "usage": message.get("usage"),
            "stopReason": message.get("stop_reason"),
            "isSidechain": bool(line.get("isSidechain")),
            "isMeta": bool(line.get("isMeta")),
            "isApiError": bool(line.get("isApiErrorMessage")),
            "agentId": line.get("agentId") or self.agent_id,
        }
        if isinstance(message_id, str):
            self.by_id[message_id] = entry
        self.messages.append(entry)


def tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ``tool_use`` with its ``tool_result`` beside it, in call order."""
    calls: dict[str, dict[str, Any]] = {}
    for message in messages:
        for block in message["content"]:
            if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                calls[block["id"]] = {
                    "id": block["id"],
                    "name": block.get("name"),
                    "input": block.get("input"),
                    "timestamp": message["timestamp"],
                    "messageUuid": message["uuid"],
                    "agentId": message["agentId"],
                    "result": None,
                    "isError": None,
                    "resultTimestamp": None,
                }
            elif block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                call = calls[block["tool_use_id"]]
                call["result"] = block.get("content")
                call["isError"] = bool(block.get("is_error"))
                call["resultTimestamp"] = message["timestamp"]
    return list(calls.values())


def read_conversation(session_id: str, files: list[ConversationFile]) -> dict[str, Any]:
    """Read every file of the session; a main transcript that cannot be read is an error."""
    main = _Reader(None)
    subagents: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for file in files:
        reader = main if not file.is_subagent else _Reader(file.agent_id or file.path.stem)
        try:
            reader.read(file.path)
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc.strerror or exc}"
            if not file.is_subagent:
                raise UnreadableTranscript(
                    f"the transcript of session {session_id} cannot be read",
                    details={"session_id": session_id, "path": str(file.path), "reason": reason},
                ) from exc
            errors.append({"path": str(file.path), "error": reason})
            continue
        if file.is_subagent:
            subagents.append(
                {
                    "agentId": reader.agent_id,
                    "path": str(file.path),
                    "messageCount": len(reader.messages),
                    "malformedLines": reader.malformed,
                    "messages": reader.messages,
                    "toolCalls": tool_calls(reader.messages),
                }
            )
    everything = main.messages + [m for agent in subagents for m in agent["messages"]]
    return {
        "sessionId": session_id,
        "title": main.title,
        "files": [{"path": str(f.path), "isSubagent": f.is_subagent, "agentId": f.agent_id} for f in files],
        "messageCount": len(main.messages),
        "totalMessages": len(everything),
        "malformedLines": main.malformed + sum(a["malformedLines"] for a in subagents),
        "messages": main.messages,
        "toolCalls": tool_calls(main.messages),
        "subagents": subagents,
        "errors": errors,
    }
