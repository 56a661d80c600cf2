"""Transcript lines straight into ledger insert parameters: the SQLite fast path's parser.

The same lines are counted, kept, de-duplicated and priced as by :mod:`parser` (``_parse_lines``
and ``_entry``). A big read decodes each line with msgspec into just the fields the import reads
(:mod:`line_structs`); a line that typed decoding refuses (invalid JSON, a field of an unexpected
type), and every line of a small read, is read as plain JSON and normalised the way ``parser``
reads a dict, so odd lines give the same result either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.lite import NO_REPORTED_COST
from tollhouse.claude_code.pricer import Pricer
from tollhouse.claude_code.spans import path_tag
from tollhouse.pricing.tiers import cache_writes, token_count

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
TYPED_MIN_BYTES = 1024 * 1024  # to read in all: below this msgspec's import costs more than it saves


# The plain decoder's line shape: ``line_structs``' fields (a test keeps them in step), as plain
# classes (``@dataclass`` would cost ~2 ms of a short report's start-up generating them).
class _Split:
    __slots__ = ("ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens")

    def __init__(self, ephemeral_1h_input_tokens: int, ephemeral_5m_input_tokens: int) -> None:
        self.ephemeral_1h_input_tokens = ephemeral_1h_input_tokens
        self.ephemeral_5m_input_tokens = ephemeral_5m_input_tokens


class _Usage:
    __slots__ = (
        "cache_creation",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "input_tokens",
        "output_tokens",
        "service_tier",
        "speed",
    )  # fmt: skip

    def __init__(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_input_tokens: int,
        cache_creation_input_tokens: int,
        cache_creation: _Split | None,
        service_tier: str | None,
        speed: str | None,
    ) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read_input_tokens = cache_read_input_tokens
        self.cache_creation_input_tokens = cache_creation_input_tokens
        self.cache_creation = cache_creation
        self.service_tier = service_tier
        self.speed = speed


class _Message:
    __slots__ = ("id", "model", "usage")

    def __init__(self, id: Any, model: Any, usage: _Usage | None) -> None:
        self.id = id
        self.model = model
        self.usage = usage


class _Line:
    __slots__ = (
        "api_error_status",
        "cost_usd",
        "cwd",
        "is_api_error",
        "is_sidechain",
        "message",
        "request_id",
        "session_id",
        "timestamp",
        "type",
    )  # fmt: skip

    def __init__(self, obj: dict[str, Any], message: _Message | None) -> None:
        self.type = obj.get("type")
        self.message = message
        self.timestamp = obj.get("timestamp")
        self.request_id = obj.get("requestId")
        self.session_id = obj.get("sessionId")
        self.cwd = obj.get("cwd")
        self.cost_usd = obj.get("costUSD")
        self.is_sidechain = obj.get("isSidechain")
        self.is_api_error = obj.get("isApiErrorMessage")
        self.api_error_status = obj.get("apiErrorStatus")


class _NeverRaised(Exception):
    pass


def _lenient_usage(usage: Any) -> _Usage | None:
    if type(usage) is not dict:
        return None
    split = usage.get("cache_creation")
    tier, speed = usage.get("service_tier"), usage.get("speed")
    return _Usage(
        input_tokens=token_count(usage.get("input_tokens")),
        output_tokens=token_count(usage.get("output_tokens")),
        cache_read_input_tokens=token_count(usage.get("cache_read_input_tokens")),
        cache_creation_input_tokens=token_count(usage.get("cache_creation_input_tokens")),
        cache_creation=_Split(
            token_count(split.get("ephemeral_1h_input_tokens")),
            token_count(split.get("ephemeral_5m_input_tokens")),
        )
        if isinstance(split, dict)
        else None,
        service_tier=tier if isinstance(tier, str) else None,
        speed=speed if isinstance(speed, str) else None,
    )


def _lenient_line(raw: bytes) -> _Line | None:
    """A line read as plain JSON (a small read, or one the typed decoder refused), normalised as
    ``parser`` reads a dict: None when it is not a JSON object (malformed)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    message = obj.get("message")
    if type(message) is not dict:
        return _Line(obj, None)
    return _Line(obj, _Message(message.get("id"), message.get("model"), _lenient_usage(message.get("usage"))))


@dataclass(slots=True)
class FileRows:
    """One file's billable lines as insert parameters, de-duplicated within the file.

    ``rows[n]`` is ``(total, is_sidechain, params)``; ``params`` are the ledger insert's values
    (see ``lite.ROW_PARAMS``): first the seq, ``seq0 + n``, last the de-duplication key. A later
    copy of a key replaces an earlier one in place (keeping its seq) when :func:`lite.better`
    says so, so the list keeps first-sighting order with each key's winning copy.
    """

    seq0: int = 1

    rows: list[tuple[int, bool, tuple[Any, ...]]] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    malformed: int = 0
    line_session_id: str | None = None


def parse_rows(
    data: bytes,
    offset: int,
    file: TranscriptFile,
    pricer: Pricer,
    tag: str | None,
    out: FileRows,
    *,
    typed: bool,
) -> None:
    """Complete lines of ``file`` starting at byte ``offset`` into ``out``; ``tag`` names the
    file in the keys of responses without ids (None: hashed from its path when one turns up)."""
    position = offset
    decode: Any = _lenient_line
    decode_error: type[Exception] = _NeverRaised
    if typed:
        from tollhouse.claude_code import line_structs

        decode, decode_error = line_structs.decode, line_structs.DecodeError
    rows, index = out.rows, out.index
    project_dir = file.project_dir
    project_dir_512 = project_dir[:512]
    is_subagent = file.is_subagent
    file_session = file.session_id
    stem = file.path.stem
    price = pricer.price_parts
    fromiso = datetime.fromisoformat
    seq0 = out.seq0
    strings: dict[str, str] = {}  # one object per distinct cwd, session, model: smaller pickles
    intern = strings.setdefault
    lines = malformed = 0
    for line in data.split(b"\n"):
        start = position
        position += len(line) + 1
        if not line or line.isspace():
            continue
        lines += 1
        try:
            obj = decode(line)
        except decode_error:
            obj = _lenient_line(line)
        if obj is None:
            malformed += 1
            continue
        if out.line_session_id is None and isinstance(obj.session_id, str):
            out.line_session_id = obj.session_id
        if obj.type != "assistant":
            continue
        message = obj.message
        if message is None:
            continue
        usage = message.usage
        if usage is None:
            continue
        # the timestamp (a line without a valid one is malformed)
        ts = obj.timestamp
        if not isinstance(ts, str) or not ts:
            malformed += 1
            continue
        try:
            moment = fromiso(ts)
        except ValueError:
            malformed += 1
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts_ms = (moment - _EPOCH) // _MS
        if len(ts) == 24 and ts[23] == "Z" and ts[19] == "." and ts[10] == "T" and ts[11:13] != "24":
            created = f"{ts[:10]} {ts[11:23]}000"
        else:
            created = _sqlite_time(ts_ms)
        # usage, as from_anthropic reads it
        writes = usage.cache_creation_input_tokens
        split = usage.cache_creation
        w5, w1 = writes, 0
        if split is not None:
            w5, w1 = cache_writes(writes, split.ephemeral_1h_input_tokens, split.ephemeral_5m_input_tokens)
        i, cr, o = usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens
        model = message.model
        if not isinstance(model, str):
            model = None
        message_id = message.id
        if isinstance(message_id, str) and message_id:
            request_id = obj.request_id
            key = f"{message_id}:{request_id if isinstance(request_id, str) else ''}"[:200]
        else:
            if tag is None:
                tag = path_tag(file.path)
            key = f"@{tag}:{start}"[:200]  # never de-duplicated (as ccusage), but stable across re-reads
        reported = obj.cost_usd
        reported_nanos = (
            _nanos(reported)
            if isinstance(reported, int | float) and not isinstance(reported, bool)
            else NO_REPORTED_COST
        )
        calc, ccusage, unpriced, ccusage_unpriced = price(model, i, cr, w5, w1, o, usage.service_tier)
        session = file_session or (obj.session_id if isinstance(obj.session_id, str) else stem)
        cwd = obj.cwd
        if not isinstance(cwd, str) or not cwd:
            cwd = None
        side = obj.is_sidechain is True
        error, status = 0, 200
        if obj.is_api_error:
            reported_status = obj.api_error_status
            error, status = 1, int(reported_status) if isinstance(reported_status, int) else 500
        total = i + cr + w5 + w1 + o
        if cwd:
            cwd = intern(cwd, cwd)
        if model:
            model = intern(model, model)
        session = intern(session, session)
        at = index.get(key)
        params = (
            seq0 + len(rows) if at is None else rows[at][2][0], ts_ms, created, cwd[:1024] if cwd else None,
            (cwd or project_dir)[:1024], project_dir_512, session[:128], model[:200] if model else None,
            error, status, i, cr, w5, w1, o, 1 if usage.speed == "fast" else 0, reported_nanos, calc, ccusage,
            1 if unpriced else 0, 1 if ccusage_unpriced else 0, 1 if is_subagent or side else 0, key,
        )  # fmt: skip
        if at is None:
            index[key] = len(rows)
            rows.append((total, side, params))
        else:
            kept_total, kept_side, _ = rows[at]
            if total > kept_total if total != kept_total else (kept_side and not side):
                rows[at] = (total, side, params)
    out.lines += lines
    out.malformed += malformed


def _sqlite_time(ts_ms: int) -> str:
    """SQLAlchemy's SQLite DATETIME text for a UTC instant, exact to the millisecond."""
    seconds, millis = divmod(ts_ms, 1000)
    return f"{_second_text(seconds)}.{millis:03d}000"


@lru_cache(maxsize=65_536)
def _second_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _nanos(usd: float) -> int:
    """A transcript's ``costUSD`` in nano-dollars (the pricing modules load only here: most
    transcripts carry no ``costUSD``)."""
    from tollhouse.pricing.cost import usd_to_nanos

    return usd_to_nanos(usd)
