"""``GET /api/machine/stats`` (seed 000): spend across every project, model and source.

One pass of SQL aggregates over the whole ledger — gateway calls and imported Claude Code
sessions alike — so the number matches what the ledger says, not a sample. Days are cut in
the configured zone from UTC-hour buckets (exact across DST, and SQLite has no zones).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger, projects
from tollhouse.ledger.queries import MODEL, usage_sums
from tollhouse.timeutil import as_utc

ACTIVE_DAYS = 30


def hour_bucket(engine: AsyncEngine) -> ColumnElement[Any]:
    """``YYYY-MM-DDTHH`` of ``created_at`` in UTC, in the dialect's own words."""
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", ledger.c.created_at), 'YYYY-MM-DD"T"HH24')
    return func.strftime("%Y-%m-%dT%H", ledger.c.created_at)


def parse_hour(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def _figures(row: Any) -> dict[str, Any]:
    return {
        "calls": int(row.calls),
        "inputTokens": int(row.input),
        "outputTokens": int(row.output),
        "cacheReadTokens": int(row.cache_read),
        "cacheWriteTokens": int(row.cache_write),
        "totalTokens": int(row.tokens),
        "cost": int(row.cost) / 1e9,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def machine_stats(engine: AsyncEngine, zone: ZoneInfo, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    bucket = hour_bucket(engine)
    by_project = (
        select(ledger.c.project_id, func.max(projects.c.name).label("name"), *usage_sums())
        .add_columns(func.max(ledger.c.created_at).label("last"))
        .select_from(ledger.outerjoin(projects, projects.c.id == ledger.c.project_id))
        .group_by(ledger.c.project_id)
    )
    by_model = select(MODEL.label("model"), *usage_sums()).group_by(MODEL)
    by_source = select(ledger.c.source, *usage_sums()).group_by(ledger.c.source)
    by_hour = (
        select(bucket.label("hour"), func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"))
        .group_by(bucket)
        .order_by(bucket)
    )
    async with engine.connect() as conn:
        project_rows = (await conn.execute(by_project)).all()
        model_rows = (await conn.execute(by_model)).all()
        source_rows = (await conn.execute(by_source)).all()
        hour_rows = (await conn.execute(by_hour)).all()

    daily: Counter[datetime] = Counter()
    for row in hour_rows:
        if row.hour:
            local = parse_hour(row.hour).astimezone(zone)
            daily[local.replace(hour=0, minute=0, second=0, microsecond=0)] += int(row.cost)
    project_list = sorted(
        (
            {
                "id": row.project_id,
                "name": row.name or row.project_id,
                **_figures(row),
                "lastActivity": _iso(as_utc(row.last)) if row.last else None,
            }
            for row in project_rows
        ),
        key=lambda p: p["cost"],
        reverse=True,
    )
    model_list = sorted(
        ({"name": row.model, **_figures(row)} for row in model_rows), key=lambda m: m["cost"], reverse=True
    )
    active_since = _iso(now - timedelta(days=ACTIVE_DAYS))
    return {
        "totalCost": sum(int(r.cost) for r in project_rows) / 1e9,
        "activeProjects": sum(1 for p in project_list if (p["lastActivity"] or "") >= active_since),
        "totalProjects": len(project_list),
        "totalCalls": sum(int(r.calls) for r in project_rows),
        "totalTokens": sum(int(r.tokens) for r in project_rows),
        "projects": project_list,
        "models": model_list,
        "sources": {row.source: _figures(row) for row in source_rows},
        "chartData": {
            "costOverTime": [
                {"date": _iso(day), "cost": nanos / 1e9} for day, nanos in sorted(daily.items())
            ],
            "costByProject": [{"project": p["name"], "cost": p["cost"]} for p in project_list],
            "modelDistribution": [{"model": m["name"], "count": m["calls"]} for m in model_list],
        },
        "timezone": zone.key,
        "activeWindowDays": ACTIVE_DAYS,
    }
