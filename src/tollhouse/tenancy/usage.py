"""Seed 004's usage views over the ledger: per-project stats, log pages, CSV export.

The export streams rows through a server-side cursor in fixed-size batches, so a million-row
export holds one batch in memory, never the whole result.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger
from tollhouse.ledger.queries import TOKENS
from tollhouse.timeutil import as_utc

_MODEL = func.coalesce(ledger.c.model_served, ledger.c.model_requested, "unknown")
EXPORT_BATCH = 2000
# Seed 004's columns first, then ours.
CSV_HEADER = (
    "date",
    "model",
    "tokens_used",
    "cost_usd",
    "cached",
    "latency_ms",
    "id",
    "status_code",
    "outcome",
)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    project_id: str
    start: datetime
    end: datetime
    model: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        query = query.where(
            ledger.c.project_id == self.project_id,
            ledger.c.created_at >= self.start,
            ledger.c.created_at < self.end,
        )
        if self.model:
            query = query.where(
                (ledger.c.model_requested == self.model) | (ledger.c.model_served == self.model)
            )
        return query


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def _cost_text(nanos: int) -> str:
    if not nanos:
        return "0"
    return f"{nanos / 1e9:.9f}".rstrip("0").rstrip(".")


async def project_stats(
    engine: AsyncEngine, project_ids: list[str], month_start: datetime
) -> dict[str, dict[str, Any]]:
    """requests/cost this month and in total, and cache hit rate, for each project."""
    if not project_ids:
        return {}
    this_month = ledger.c.created_at >= month_start
    query = (
        select(
            ledger.c.project_id,
            func.count().label("requests_total"),
            func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost_total"),
            func.coalesce(func.sum(case((this_month, 1), else_=0)), 0).label("requests_month"),
            func.coalesce(func.sum(case((this_month, ledger.c.cost_nanos), else_=0)), 0).label("cost_month"),
            func.coalesce(func.sum(case((ledger.c.cached, 1), else_=0)), 0).label("hits"),
        )
        .where(ledger.c.project_id.in_(project_ids))
        .group_by(ledger.c.project_id)
    )
    async with engine.connect() as conn:
        rows = list(await conn.execute(query))
    out = {
        pid: {
            "requests_total": 0,
            "requests_this_month": 0,
            "cost_total": 0.0,
            "cost_this_month": 0.0,
            "cache_hit_rate": 0.0,
        }
        for pid in project_ids
    }
    for r in rows:
        total = int(r.requests_total)
        out[r.project_id] = {
            "requests_total": total,
            "requests_this_month": int(r.requests_month),
            "cost_total": int(r.cost_total) / 1e9,
            "cost_this_month": int(r.cost_month) / 1e9,
            "cache_hit_rate": round(int(r.hits) / total, 4) if total else 0.0,
        }
    return out


async def usage_logs(engine: AsyncEngine, flt: UsageFilter, limit: int) -> dict[str, Any]:
    rows_query = (
        flt.apply(
            select(
                ledger.c.id,
                _MODEL.label("model"),
                TOKENS.label("tokens"),
                ledger.c.cost_nanos,
                ledger.c.cached,
                ledger.c.tokens_saved,
                ledger.c.latency_ms,
                ledger.c.created_at,
                ledger.c.status_code,
                ledger.c.outcome,
                ledger.c.api_key_id,
            )
        )
        .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
        .limit(limit)
    )
    summary_query = flt.apply(
        select(
            func.count().label("requests"),
            func.coalesce(func.sum(TOKENS), 0).label("tokens"),
            func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
            func.coalesce(func.sum(case((ledger.c.cached, 1), else_=0)), 0).label("hits"),
        )
    )
    async with engine.connect() as conn:
        rows = list(await conn.execute(rows_query))
        summary = (await conn.execute(summary_query)).one()
    logs = []
    for r in rows:
        entry: dict[str, Any] = {
            "id": r.id,
            "model": r.model,
            "tokens_used": int(r.tokens),
            "cost_usd": int(r.cost_nanos) / 1e9,
            "cached": bool(r.cached),
            "latency_ms": r.latency_ms,
            "created_at": _iso(r.created_at),
            "status_code": r.status_code,
            "outcome": r.outcome,
            "api_key_id": r.api_key_id,
        }
        if r.cached:
            entry["tokens_saved"] = int(r.tokens_saved)
        logs.append(entry)
    total = int(summary.requests)
    return {
        "logs": logs,
        "total": total,
        "summary": {
            "total_requests": total,
            "total_tokens": int(summary.tokens),
            "total_cost": int(summary.cost) / 1e9,
            "cache_hits": int(summary.hits),
            "cache_hit_rate": round(int(summary.hits) / total, 4) if total else 0.0,
        },
    }


async def export_csv(engine: AsyncEngine, flt: UsageFilter, limit: int | None) -> AsyncIterator[bytes]:
    """CSV lines, oldest first, streamed from a server-side cursor."""
    query = flt.apply(
        select(
            ledger.c.created_at,
            ledger.c.id,
            _MODEL.label("model"),
            TOKENS.label("tokens"),
            ledger.c.cost_nanos,
            ledger.c.cached,
            ledger.c.latency_ms,
            ledger.c.status_code,
            ledger.c.outcome,
        )
    ).order_by(ledger.c.created_at, ledger.c.id)
    if limit is not None:
        query = query.limit(limit)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue().encode()
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=EXPORT_BATCH))
        async for batch in result.partitions(EXPORT_BATCH):
            buffer.seek(0)
            buffer.truncate()
            for r in batch:
                writer.writerow(
                    (
                        _iso(r.created_at),
                        r.model,
                        int(r.tokens),
                        _cost_text(int(r.cost_nanos)),
                        "true" if r.cached else "false",
                        "" if r.latency_ms is None else r.latency_ms,
                        r.id,
                        r.status_code,
                        r.outcome,
                    )
                )
            yield buffer.getvalue().encode()
