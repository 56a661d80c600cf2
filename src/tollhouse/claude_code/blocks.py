"""5-hour billing blocks, as ccusage computes them, from hourly SQL aggregates.

A block starts at its first entry's UTC hour and lasts five hours; an entry more than five
hours after the block start or after the previous entry starts a new block, and a pause longer
than five hours shows as a gap. Because block starts are whole hours, every decision falls on
an hour boundary, so per-hour sums (with the exact first and last timestamps, and the rare
entry stamped exactly on the hour kept apart) decide blocks exactly as per-entry data would —
without reading every entry back.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tollhouse.claude_code.reports import (
    ReportOptions,
    Tokens,
    in_range,
    iso_ms,
    local_date,
    model_label,
    project_filter,
    sums,
    usd,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

HOUR_MS = 3_600_000


@dataclass(slots=True)
class _Slice:
    """Entries of one hour (or the ones stamped exactly on its first millisecond)."""

    first_ms: int
    last_ms: int
    entries: int = 0
    tokens: Tokens = field(default_factory=Tokens)
    models: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (first ms, first seq)


@dataclass(slots=True)
class Block:
    start_ms: int
    end_ms: int
    first_ms: int = 0
    last_ms: int = 0
    entries: int = 0
    tokens: Tokens = field(default_factory=Tokens)
    models: dict[str, tuple[int, int]] = field(default_factory=dict)
    gap: bool = False

    def active(self, now_ms: int, length_ms: int) -> bool:
        return (
            not self.gap and self.entries > 0 and now_ms - self.last_ms < length_ms and now_ms < self.end_ms
        )

    def burn_rate(self) -> dict[str, float] | None:
        minutes = (self.last_ms - self.first_ms) / 60_000
        if self.gap or minutes <= 0:
            return None
        return {
            "tokensPerMinute": self.tokens.total / minutes,
            "tokensPerMinuteForIndicator": (self.tokens.input + self.tokens.output) / minutes,
            "costPerHour": usd(self.tokens.cost_nanos) / minutes * 60,
        }

    def projection(self, now_ms: int) -> dict[str, Any] | None:
        rate = self.burn_rate()
        if rate is None:
            return None
        remaining = round((self.end_ms - now_ms) / 60_000)
        tokens = self.tokens.total + rate["tokensPerMinute"] * remaining
        cost = usd(self.tokens.cost_nanos) + rate["costPerHour"] / 60 * remaining
        return {
            "totalTokens": round(tokens),
            "totalCost": round(cost * 100) / 100,
            "remainingMinutes": remaining,
        }

    def json(self, now_ms: int, length_ms: int) -> dict[str, Any]:
        active = self.active(now_ms, length_ms)
        cost = usd(self.tokens.cost_nanos)
        return {
            "id": f"gap-{iso_ms(self.start_ms)}" if self.gap else iso_ms(self.start_ms),
            "startTime": iso_ms(self.start_ms),
            "endTime": iso_ms(self.end_ms),
            "actualEndTime": None if self.gap else iso_ms(self.last_ms),
            "isActive": active,
            "isGap": self.gap,
            "entries": self.entries,
            "tokenCounts": {
                "inputTokens": self.tokens.input,
                "outputTokens": self.tokens.output,
                "cacheCreationInputTokens": self.tokens.cache_creation,
                "cacheReadInputTokens": self.tokens.cache_read,
            },
            "totalTokens": self.tokens.total,
            "costUSD": int(cost) if cost == int(cost) else cost,
            "models": [m for m, _ in sorted(self.models.items(), key=lambda item: item[1])],
            "burnRate": self.burn_rate() if active else None,
            "projection": self.projection(now_ms) if active else None,
        }


async def load_blocks(
    engine: AsyncEngine | sqlite3.Connection,
    options: ReportOptions,
    *,
    length_hours: float = 5.0,
    now_ms: int | None = None,
) -> tuple[list[Block], int, int]:
    """The blocks (with gaps), plus the ``now`` and block length they were judged with."""
    length_ms = int(length_hours * HOUR_MS)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(engine, sqlite3.Connection):
        from tollhouse.claude_code import rollups

        conn = engine
        records = rollups.rollup_query(
            conn, "hour", ["k1", "k2"], ["sum(n)", "min(min_ts)", "max(max_ts)"], mode=options.mode,
            tier_rule=options.tier_rule.value, project=options.project,
        )  # fmt: skip
    else:
        from sqlalchemy import case, func, select

        from tollhouse.claude_code.store import entries

        e = entries().c
        hour = (e.ts_ms // HOUR_MS).label("hour")
        on_edge = case((e.ts_ms % HOUR_MS == 0, 1), else_=0).label("edge")
        query = select(
            hour, on_edge, e.model, e.fast, *sums(options), func.count(), func.min(e.ts_ms), func.max(e.ts_ms)
        ).group_by(hour, on_edge, e.model, e.fast)
        where = project_filter(options.project)
        if where is not None:
            query = query.where(where)
        async with engine.connect() as sa_conn:
            records = [tuple(r) for r in await sa_conn.execute(query)]
    blocks = _segment(_slices(records), length_ms)
    blocks = [b for b in blocks if in_range(local_date(b.start_ms, options.zone), options)]
    return blocks, now, length_ms


def _slices(records: Iterable[tuple[Any, ...]]) -> list[_Slice]:
    slices: dict[tuple[int, int], _Slice] = {}
    for hour_number, edge, model, fast, *numbers in records:
        first_ms, last_ms = int(numbers[8]), int(numbers[9])
        key = (int(hour_number), -int(edge))  # the on-the-hour entries come first
        piece = slices.get(key)
        if piece is None:
            piece = slices[key] = _Slice(first_ms, last_ms)
        piece.first_ms, piece.last_ms = min(piece.first_ms, first_ms), max(piece.last_ms, last_ms)
        piece.entries += int(numbers[7])
        i, o, cc, cr, cost = (int(v or 0) for v in numbers[:5])
        piece.tokens.add(Tokens(i, o, cc, cr, cost))
        label = model_label(model, fast)
        if label is not None:
            seen = piece.models.get(label)
            mark = (first_ms, int(numbers[5]))
            piece.models[label] = mark if seen is None else min(seen, mark)
    return [slices[key] for key in sorted(slices)]


def _segment(pieces: list[_Slice], length_ms: int) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    for piece in pieces:
        if current is not None:
            since_start = piece.first_ms - current.start_ms
            since_last = piece.first_ms - current.last_ms
            if since_start > length_ms or since_last > length_ms:
                blocks.append(current)
                if since_last > length_ms:
                    blocks.append(Block(current.last_ms + length_ms, piece.first_ms, gap=True))
                current = None
        if current is None:
            start = piece.first_ms - piece.first_ms % HOUR_MS
            current = Block(start, start + length_ms, first_ms=piece.first_ms)
        current.last_ms = max(current.last_ms, piece.last_ms)
        current.entries += piece.entries
        current.tokens.add(piece.tokens)
        for label, mark in piece.models.items():
            seen = current.models.get(label)
            current.models[label] = mark if seen is None else min(seen, mark)
    if current is not None:
        blocks.append(current)
    return blocks


def blocks_report(
    blocks: list[Block], now_ms: int, length_ms: int, *, active_only: bool = False
) -> dict[str, Any]:
    chosen = [b for b in blocks if b.active(now_ms, length_ms)] if active_only else blocks
    return {"blocks": [b.json(now_ms, length_ms) for b in chosen]}
