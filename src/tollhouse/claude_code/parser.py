"""Reading a transcript from a byte offset: complete lines only, priced as they are read.

Runs in a worker thread (``asyncio.to_thread``). Every line is parsed (so malformed ones are
counted), but only top-level ``assistant`` lines whose ``message.usage`` is an object become
entries: ``progress`` lines that nest a subagent's messages, ``summary``, ``system``, snapshots
and line types newer than this code are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.lite import CostMode
from tollhouse.claude_code.pricer import SYNTHETIC_MODEL, Pricer
from tollhouse.claude_code.spans import HEAD_BYTES, fingerprint, path_tag, read_span
from tollhouse.pricing import Usage
from tollhouse.pricing.cost import usd_to_nanos
from tollhouse.pricing.usage import from_anthropic

__all__ = [
    "HEAD_BYTES", "SYNTHETIC_MODEL", "CostMode", "Entry", "Pricer", "fingerprint", "read_chunk", "read_span"
]  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(slots=True)
class Entry:
    """One billable transcript line, already priced under both tier rules."""

    key: str
    ts_ms: int
    session_id: str
    cwd: str | None
    model: str | None
    usage: Usage
    is_sidechain: bool
    fast: bool
    reported_nanos: int | None
    calc_nanos: int
    ccusage_nanos: int
    unpriced: bool
    ccusage_unpriced: bool
    api_error_status: int | None

    @property
    def total(self) -> int:
        return self.usage.total_tokens

    def ledger_cost(self, mode: str) -> int:
        if mode == CostMode.CALCULATE:
            return self.calc_nanos
        if mode == CostMode.DISPLAY:
            return self.reported_nanos or 0
        return self.reported_nanos if self.reported_nanos is not None else self.calc_nanos


@dataclass(slots=True)
class Chunk:
    """What one read produced. ``consumed`` counts bytes of complete lines only."""

    entries: list[Entry] = field(default_factory=list)
    lines: int = 0
    malformed: int = 0
    consumed: int = 0
    eof: bool = True
    restarted: bool = False
    head: bytes = b""
    line_session_id: str | None = None


def read_chunk(
    file: TranscriptFile,
    offset: int,
    pricer: Pricer,
    *,
    max_bytes: int,
    expect_head: tuple[str, int] | None = None,
) -> Chunk:
    """Parse complete lines from ``offset`` (see :func:`read_span`) into entries."""
    span = read_span(file, offset, max_bytes=max_bytes, expect_head=expect_head)
    chunk = Chunk(eof=span.eof, restarted=span.restarted, head=span.head)
    _parse_lines(span.data, span.offset, file, pricer, chunk, path_tag(file.path))
    chunk.consumed = len(span.data)
    return chunk


def _parse_lines(
    data: bytes, offset: int, file: TranscriptFile, pricer: Pricer, chunk: Chunk, tag: str
) -> None:
    position = offset
    loads = orjson.loads
    for line in data.split(b"\n"):
        start = position
        position += len(line) + 1
        if not line or line.isspace():
            continue
        chunk.lines += 1
        try:
            obj = loads(line)
        except orjson.JSONDecodeError:
            chunk.malformed += 1
            continue
        if not isinstance(obj, dict):
            chunk.malformed += 1
            continue
        if chunk.line_session_id is None and isinstance(obj.get("sessionId"), str):
            chunk.line_session_id = obj["sessionId"]
        if obj.get("type") != "assistant":
            continue
        message = obj.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
            continue
        entry = _entry(obj, message, file, pricer, f"@{tag}:{start}")
        if entry is None:
            chunk.malformed += 1
        else:
            chunk.entries.append(entry)


def _entry(
    obj: dict[str, Any], message: dict[str, Any], file: TranscriptFile, pricer: Pricer, fallback_key: str
) -> Entry | None:
    ts_ms = _timestamp_ms(obj.get("timestamp"))
    if ts_ms is None:
        return None
    raw_usage: dict[str, Any] = message["usage"]
    usage = from_anthropic(raw_usage)
    model = message.get("model") if isinstance(message.get("model"), str) else None
    message_id = message.get("id")
    request_id = obj.get("requestId")
    if isinstance(message_id, str) and message_id:
        key = f"{message_id}:{request_id if isinstance(request_id, str) else ''}"
    else:
        key = fallback_key  # never de-duplicated (as ccusage), but stable across re-reads
    reported = obj.get("costUSD")
    reported_nanos = (
        usd_to_nanos(reported)
        if isinstance(reported, int | float) and not isinstance(reported, bool)
        else None
    )
    tier = raw_usage.get("service_tier")
    calc, ccusage, unpriced, ccusage_unpriced = pricer.price(
        model, usage, tier if isinstance(tier, str) else None
    )
    session = file.session_id or (
        obj["sessionId"] if isinstance(obj.get("sessionId"), str) else file.path.stem
    )
    cwd = obj.get("cwd")
    status = obj.get("apiErrorStatus")
    return Entry(
        key=key[:200],
        ts_ms=ts_ms,
        session_id=session[:128],
        cwd=cwd if isinstance(cwd, str) and cwd else None,
        model=model,
        usage=usage,
        is_sidechain=obj.get("isSidechain") is True,
        fast=raw_usage.get("speed") == "fast",
        reported_nanos=reported_nanos,
        calc_nanos=calc,
        ccusage_nanos=ccusage,
        unpriced=unpriced,
        ccusage_unpriced=ccusage_unpriced,
        api_error_status=(status if isinstance(status, int) else 500)
        if obj.get("isApiErrorMessage")
        else None,
    )


def _timestamp_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS
