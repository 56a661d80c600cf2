"""Reading a transcript from a byte offset: complete lines only, priced as they are read.

Runs in a worker thread (``asyncio.to_thread``). Every line is parsed (so malformed ones are
counted), but only top-level ``assistant`` lines whose ``message.usage`` is an object become
entries: ``progress`` lines that nest a subagent's messages, ``summary``, ``system``, snapshots
and line types newer than this code are skipped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tollhouse.claude_code.ccusage_pricing import CcusagePricer
from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.lite import CostMode
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


def fingerprint(head: bytes) -> tuple[str, int]:
    import hashlib  # here: its OpenSSL binding costs ~3.5 ms of a short report's start-up

    return hashlib.sha256(head).hexdigest(), len(head)


def _is_complete_object(tail: bytes) -> bool:
    try:
        return isinstance(orjson.loads(tail), dict)
    except orjson.JSONDecodeError:
        return False


def _path_tag(path: Path) -> str:
    import hashlib

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
