"""Reading a transcript from a byte offset: complete lines only, priced as they are read.

Runs in a worker thread (``asyncio.to_thread``). Every line is parsed (so malformed ones are
counted), but only top-level ``assistant`` lines whose ``message.usage`` is an object become
entries: ``progress`` lines that nest a subagent's messages, ``summary``, ``system``, snapshots
and line types newer than this code are skipped.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import orjson

from tollhouse.claude_code.ccusage_pricing import CcusagePricer
from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.lite import NO_REPORTED_COST, CostMode
from tollhouse.pricing import ModelPrice, PriceTable, TierRule, Usage, compute_cost
from tollhouse.pricing.cost import LONG_CONTEXT_THRESHOLD
from tollhouse.pricing.usage import from_anthropic

SYNTHETIC_MODEL = "<synthetic>"

__all__ = ["CostMode", "Entry", "Pricer", "read_chunk"]
HEAD_BYTES = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_NANOS = Decimal(1_000_000_000)


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


class Pricer:
    """Both costs for a usage: the ledger's (Anthropic's rules) and ccusage's, for parity.

    For most models and requests the two rules agree, so ccusage's is computed only when they
    can differ (a long-context request, a rate ccusage defaults differently): half the work.
    """

    def __init__(self, table: PriceTable) -> None:
        self.table = table
        self.ccusage = CcusagePricer(table)
        self._agree: dict[str, bool] = {}
        self._fast: dict[str, tuple[tuple[int, ...], int, bool] | None] = {}

    def price(self, model: str | None, usage: Usage, service_tier: str | None) -> tuple[int, int, bool, bool]:
        if model == SYNTHETIC_MODEL or usage.total_tokens == 0:
            return 0, 0, False, False
        if not model:
            return 0, 0, True, True
        if usage.prompt_tokens <= LONG_CONTEXT_THRESHOLD and (
            service_tier is None or service_tier in _PLAIN_TIERS
        ):
            fast = self._fast.get(model, _UNSET)
            if fast is _UNSET:
                fast = self._fast[model] = self._fast_rates(model)
            if fast is not None:
                # Below 200k input at the standard tier the shared engine uses the base rates:
                # the same sum in exact integers (rates as fractions over one denominator).
                rates, denominator, agree = fast
                total = (
                    usage.input_tokens * rates[0]
                    + usage.cache_read_tokens * rates[1]
                    + usage.cache_write_5m_tokens * rates[2]
                    + usage.cache_write_1h_tokens * rates[3]
                    + usage.output_tokens * rates[4]
                )
                quotient, remainder = divmod(total, denominator)
                if 2 * remainder > denominator or (2 * remainder == denominator and quotient & 1):
                    quotient += 1  # half-even, as compute_cost rounds
                if agree and usage.output_tokens <= LONG_CONTEXT_THRESHOLD:
                    return quotient, quotient, False, False
                return quotient, self.ccusage.cost(model, usage).nanos, False, self._ccusage_unpriced(model)
        price = self.table.lookup(model)
        calc = compute_cost(usage, price, tier_rule=TierRule.ANTHROPIC, service_tier=service_tier)
        if (
            price is not None
            and usage.prompt_tokens <= LONG_CONTEXT_THRESHOLD
            and usage.output_tokens <= LONG_CONTEXT_THRESHOLD
            and (service_tier or "standard") in ("standard", "default")
            and self._rates_agree(model, price)
        ):
            return calc.nanos, calc.nanos, False, False
        ccusage = self.ccusage.cost(model, usage)
        return calc.nanos, ccusage.nanos, calc.unpriced, ccusage.unpriced

    def price_parts(
        self, model: str | None, i: int, cr: int, w5: int, w1: int, o: int, service_tier: str | None
    ) -> tuple[int, int, bool, bool]:
        """:meth:`price` from the five token counts (no :class:`Usage` on the common path)."""
        prompt = i + cr + w5 + w1
        if prompt + o == 0 or model == SYNTHETIC_MODEL or not model:
            return self.price(model, Usage(i, cr, w5, w1, o), service_tier)
        if (
            prompt <= LONG_CONTEXT_THRESHOLD
            and o <= LONG_CONTEXT_THRESHOLD
            and (service_tier is None or service_tier in _PLAIN_TIERS)
        ):
            fast = self._fast.get(model, _UNSET)
            if fast is _UNSET:
                fast = self._fast[model] = self._fast_rates(model)
            if fast is not None and fast[2]:
                rates, denominator, _ = fast
                total = i * rates[0] + cr * rates[1] + w5 * rates[2] + w1 * rates[3] + o * rates[4]
                quotient, remainder = divmod(total, denominator)
                if 2 * remainder > denominator or (2 * remainder == denominator and quotient & 1):
                    quotient += 1
                return quotient, quotient, False, False
        return self.price(model, Usage(i, cr, w5, w1, o), service_tier)

    def _fast_rates(self, model: str) -> tuple[tuple[int, ...], int, bool] | None:
        price = self.table.lookup(model)
        if price is None:
            return None
        ratios = [rate.as_integer_ratio() for rate in _base_rates(price)]
        denominator = math.lcm(*(d for _, d in ratios))
        # order: input, cache read, 5-minute write, 1-hour write, output; nano-dollars
        rates = tuple(n * (denominator // d) * 1_000_000_000 for n, d in ratios)
        order = (rates[0], rates[2], rates[3], rates[4], rates[1])
        return order, denominator, self._rates_agree(model, price)

    def _ccusage_unpriced(self, model: str) -> bool:
        return self.ccusage.price(model) is None

    def _rates_agree(self, model: str, price: ModelPrice) -> bool:
        agree = self._agree.get(model)
        if agree is None:
            other = self.ccusage.price(model)
            agree = other is not None and _base_rates(price) == _base_rates(other)
            self._agree[model] = agree
        return agree


_UNSET: Any = object()
_PLAIN_TIERS = frozenset({"standard", "default"})


def _base_rates(price: ModelPrice) -> tuple[Decimal, ...]:
    """The per-token rates below 200k tokens, with the shared engine's defaults for gaps."""
    return (
        price.input,
        price.output,
        price.cache_read if price.cache_read is not None else price.input,
        price.cache_write_5m if price.cache_write_5m is not None else price.input,
        price.cache_write_1h if price.cache_write_1h is not None else price.input * 2,
    )


@dataclass(slots=True)
class Span:
    """Complete lines read from a file: ``data`` starts at ``offset`` (0 after a restart)."""

    data: bytes
    offset: int
    eof: bool
    restarted: bool
    head: bytes


def read_span(
    file: TranscriptFile, offset: int, *, max_bytes: int, expect_head: tuple[str, int] | None
) -> Span:
    """Complete lines from ``offset``. When ``expect_head`` (sha256 and length of the file's first
    bytes as last seen) no longer matches, the file was replaced: read from 0."""
    restarted, head = False, b""
    with file.path.open("rb") as handle:
        if offset and expect_head is not None and fingerprint(handle.read(expect_head[1])) != expect_head:
            offset = 0
            restarted = True
        if offset == 0:
            handle.seek(0)
            head = handle.read(HEAD_BYTES)
        handle.seek(offset)
        # No bigger than the file: read(n) allocates n bytes first, and most files are small.
        want = min(max_bytes, max(os.fstat(handle.fileno()).st_size - offset, 0) + 1)
        data = handle.read(want)
        at_end = len(data) < want
        newline = b"\n" in data
        while not at_end and not newline:  # one line longer than a chunk: read until it ends
            more = handle.read(max_bytes)
            data += more
            at_end = len(more) < max_bytes
            newline = b"\n" in more
    end = data.rfind(b"\n") + 1
    if at_end and end < len(data) and _is_complete_object(data[end:]):
        end = len(data)  # a last line without its newline but whole: Claude Code is done with it
    return Span(data[:end] if end < len(data) else data, offset, at_end, restarted, head)


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
    _parse_lines(span.data, span.offset, file, pricer, chunk, _path_tag(file.path))
    chunk.consumed = len(span.data)
    return chunk


class _Message(msgspec.Struct):
    """What a transcript line's ``message`` contributes; its ``content`` is skipped unbuilt."""

    id: Any = None
    model: Any = None
    usage: Any = None


class _Line(msgspec.Struct):
    """The fields of a transcript line the import reads. Decoding straight into this skips the
    rest (message content, tool results: most of the bytes) without building Python objects;
    values keep JSON's own types, checked below exactly as on a dict."""

    type: Any = None
    message: _Message | None = None
    timestamp: Any = None
    request_id: Any = msgspec.field(default=None, name="requestId")
    session_id: Any = msgspec.field(default=None, name="sessionId")
    cwd: Any = None
    cost_usd: Any = msgspec.field(default=None, name="costUSD")
    is_sidechain: Any = msgspec.field(default=None, name="isSidechain")
    is_api_error: Any = msgspec.field(default=None, name="isApiErrorMessage")
    api_error_status: Any = msgspec.field(default=None, name="apiErrorStatus")


_decode_line = msgspec.json.Decoder(_Line).decode


def _lenient_line(raw: bytes) -> _Line | None:
    """A line the typed decoder refused (a ``message`` that is not an object, invalid JSON…),
    read as plain JSON: None when it is not a JSON object (malformed)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    message = obj.get("message")
    return _Line(
        type=obj.get("type"),
        message=_Message(message.get("id"), message.get("model"), message.get("usage"))
        if type(message) is dict
        else None,
        timestamp=obj.get("timestamp"),
        request_id=obj.get("requestId"),
        session_id=obj.get("sessionId"),
        cwd=obj.get("cwd"),
        cost_usd=obj.get("costUSD"),
        is_sidechain=obj.get("isSidechain"),
        is_api_error=obj.get("isApiErrorMessage"),
        api_error_status=obj.get("apiErrorStatus"),
    )


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
    data: bytes, offset: int, file: TranscriptFile, pricer: Pricer, tag: str, out: FileRows
) -> None:
    """:func:`_parse_lines` and :func:`_entry` fused for the SQLite fast path: the same lines
    counted, kept and priced, straight into insert parameters."""
    position = offset
    decode, decode_error = _decode_line, msgspec.DecodeError
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
            found = _lenient_line(line)
            if found is None:
                malformed += 1
                continue
            obj = found
        if out.line_session_id is None and isinstance(obj.session_id, str):
            out.line_session_id = obj.session_id
        if obj.type != "assistant":
            continue
        message = obj.message
        if message is None:
            continue
        usage = message.usage
        if type(usage) is not dict:
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
        if usage:
            value = usage.get("cache_creation_input_tokens")
            writes = value if isinstance(value, int) and value > 0 else 0
            split = usage.get("cache_creation")
            w1, w5 = 0, writes
            if isinstance(split, dict):
                value = split.get("ephemeral_1h_input_tokens")
                w1 = value if isinstance(value, int) and value > 0 else 0
                value = split.get("ephemeral_5m_input_tokens")
                w5 = value if isinstance(value, int) and value > 0 else 0
                if w1 + w5 != writes and writes:
                    w5 = max(writes - w1, 0)
            value = usage.get("input_tokens")
            i = value if isinstance(value, int) and value > 0 else 0
            value = usage.get("cache_read_input_tokens")
            cr = value if isinstance(value, int) and value > 0 else 0
            value = usage.get("output_tokens")
            o = value if isinstance(value, int) and value > 0 else 0
        else:
            i = cr = w5 = w1 = o = 0
        model = message.model
        if not isinstance(model, str):
            model = None
        message_id = message.id
        if isinstance(message_id, str) and message_id:
            request_id = obj.request_id
            key = f"{message_id}:{request_id if isinstance(request_id, str) else ''}"[:200]
        else:
            key = f"@{tag}:{start}"[:200]  # never de-duplicated (as ccusage), but stable across re-reads
        reported = obj.cost_usd
        reported_nanos = (
            int((Decimal(str(reported)) * _NANOS).to_integral_value())
            if isinstance(reported, int | float) and not isinstance(reported, bool)
            else None
        )
        tier = usage.get("service_tier")
        calc, ccusage, unpriced, ccusage_unpriced = price(
            model, i, cr, w5, w1, o, tier if isinstance(tier, str) else None
        )
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
            error, status, i, cr, w5, w1, o, 1 if usage.get("speed") == "fast" else 0,
            NO_REPORTED_COST if reported_nanos is None else reported_nanos, calc, ccusage,
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


_SECONDS: dict[int, str] = {}


def _sqlite_time(ts_ms: int) -> str:
    """SQLAlchemy's SQLite DATETIME text for a UTC instant, exact to the millisecond."""
    seconds, millis = divmod(ts_ms, 1000)
    text = _SECONDS.get(seconds)
    if text is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        text = _SECONDS[seconds] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    return f"{text}.{millis:03d}000"


def fingerprint(head: bytes) -> tuple[str, int]:
    return hashlib.sha256(head).hexdigest(), len(head)


def _is_complete_object(tail: bytes) -> bool:
    try:
        return isinstance(orjson.loads(tail), dict)
    except orjson.JSONDecodeError:
        return False


def _path_tag(path: Path) -> str:
    return hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]


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
        int((Decimal(str(reported)) * _NANOS).to_integral_value())
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
