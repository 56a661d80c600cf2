"""``GET /api/dashboard/stats?period=7d|30d|all`` (seed 004): requests, cache hit rate, cost,
savings, top models and a daily chart, for every project the caller may see.

Four aggregates, each bounded by ``created_at`` (``ix_ledger_created_at``) or, for one project,
by ``(project_id, created_at)``. Days are cut in the configured zone from UTC-hour buckets, as
``GET /api/machine/stats`` does, so a day is exact across DST.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.analytics.machine import hour_bucket, parse_hour
from tollhouse.db.tables import ledger
from tollhouse.errors import InvalidParameter
from tollhouse.ledger.queries import MODEL, TOKENS
from tollhouse.timeutil import Period, period_bounds

PERIODS = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
TOP_MODELS = 10


def period_start(period: str, now: datetime) -> datetime | None:
    if period not in PERIODS:
        raise InvalidParameter(
            f"period must be one of 7d, 30d, all (got {period!r})", param="period", details={"period": period}
        )
    span = PERIODS[period]
    return None if span is None else now - span


def _scoped(query: Select[Any], projects: list[str] | None, since: datetime | None) -> Select[Any]:
    if projects is not None:
        query = query.where(ledger.c.project_id.in_(projects))
    if since is not None:
        query = query.where(ledger.c.created_at >= since)
    return query


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def dashboard_stats(
    engine: AsyncEngine,
    zone: ZoneInfo,
    period: str,
    projects: list[str] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``projects``: the project ids the caller may see, or None for every project."""
    now = now or datetime.now(UTC)
    since = period_start(period, now)
    today, _ = period_bounds(Period.DAY, zone, now)
    month, _ = period_bounds(Period.MONTH, zone, now)
    totals = _scoped(
        select(
            func.count().label("requests"),
            _count_if(ledger.c.cached).label("hits"),
            func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
            func.coalesce(func.sum(ledger.c.saved_cost_nanos), 0).label("saved"),
            func.coalesce(func.sum(ledger.c.tokens_saved), 0).label("tokens_saved"),
            func.coalesce(func.sum(TOKENS), 0).label("tokens"),
        ),
        projects,
        since,
    )
    recent = _scoped(
        select(
            _count_if(ledger.c.created_at >= today).label("today"),
            func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("month_cost"),
        ),
        projects,
        min(today, month),
    )
    top = (
        _scoped(
            select(
                MODEL.label("model"),
                func.count().label("requests"),
                func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
            ),
            projects,
            since,
        )
        .group_by(MODEL)
        .order_by(func.count().desc(), MODEL)
        .limit(TOP_MODELS)
    )
    bucket = hour_bucket(engine)
    hours = _scoped(
        select(
            bucket.label("hour"),
            func.count().label("requests"),
            func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
        ),
        projects,
        since,
    ).group_by(bucket)
    async with engine.connect() as conn:
        total = (await conn.execute(totals)).one()
        latest = (await conn.execute(recent)).one()
        model_rows = (await conn.execute(top)).all()
        hour_rows = (await conn.execute(hours)).all()
    requests: Counter[str] = Counter()
    cost: Counter[str] = Counter()
    for row in hour_rows:
        if row.hour:
            day = parse_hour(row.hour).astimezone(zone).date().isoformat()
            requests[day] += int(row.requests)
            cost[day] += int(row.cost)
    count = int(total.requests)
    return {
        "period": period,
        "requests_total": count,
        "requests_today": int(latest.today),
        "cache_hit_rate": round(int(total.hits) / count, 4) if count else 0.0,
        "cache_hits": int(total.hits),
        "cost_this_month": int(latest.month_cost) / 1e9,
        "cost_period": int(total.cost) / 1e9,
        "cost_saved": int(total.saved) / 1e9,
        "tokens_saved": int(total.tokens_saved),
        "tokens_total": int(total.tokens),
        "top_models": [
            {"model": r.model, "requests": int(r.requests), "cost": int(r.cost) / 1e9} for r in model_rows
        ],
        "chart_data": [
            {"date": day, "requests": requests[day], "cost": cost[day] / 1e9} for day in sorted(requests)
        ],
        "timezone": zone.key,
    }
