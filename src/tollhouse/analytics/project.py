"""``GET /api/project/stats`` (seed 000): one project's cost, tokens, calls and response time,
with trends of the last 24 hours against the 24 hours before.

One indexed aggregate over the project's ledger rows (``ix_ledger_project_id_created_at``):
the all-time totals and both 24-hour windows come out of the same scan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger
from tollhouse.ledger.queries import TOKENS

WINDOW = timedelta(hours=24)


def _sums(label: str, when: ColumnElement[bool] | None) -> list[ColumnElement[Any]]:
    def only(value: ColumnElement[Any]) -> ColumnElement[Any]:
        return value if when is None else case((when, value), else_=0)

    has_latency = ledger.c.latency_ms.is_not(None)
    return [
        func.coalesce(func.sum(only(ledger.c.cost_nanos)), 0).label(f"{label}_cost"),
        func.coalesce(func.sum(only(TOKENS)), 0).label(f"{label}_tokens"),
        func.coalesce(func.sum(only(case((ledger.c.id.is_not(None), 1), else_=0))), 0).label(
            f"{label}_calls"
        ),
        func.coalesce(func.sum(only(func.coalesce(ledger.c.latency_ms, 0))), 0).label(f"{label}_ms"),
        func.coalesce(func.sum(only(case((has_latency, 1), else_=0))), 0).label(f"{label}_timed"),
        func.coalesce(func.sum(only(ledger.c.saved_cost_nanos)), 0).label(f"{label}_saved"),
        func.coalesce(func.sum(only(case((ledger.c.cached, 1), else_=0))), 0).label(f"{label}_hits"),
    ]


def _window(row: Any, label: str) -> dict[str, Any]:
    timed = int(getattr(row, f"{label}_timed"))
    return {
        "cost": int(getattr(row, f"{label}_cost")) / 1e9,
        "tokens": int(getattr(row, f"{label}_tokens")),
        "calls": int(getattr(row, f"{label}_calls")),
        "avgTime": round(int(getattr(row, f"{label}_ms")) / timed, 1) if timed else 0.0,
        "costSaved": int(getattr(row, f"{label}_saved")) / 1e9,
        "cacheHits": int(getattr(row, f"{label}_hits")),
    }


def trend(current: float, previous: float) -> float:
    """Percent change; 100 when something appears from nothing, 0 when both are nothing."""
    if previous:
        return round((current - previous) / previous * 100, 1)
    return 100.0 if current else 0.0


async def project_stats(engine: AsyncEngine, project_id: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    current = ledger.c.created_at >= now - WINDOW
    previous = and_(ledger.c.created_at >= now - 2 * WINDOW, ledger.c.created_at < now - WINDOW)
    query = select(*_sums("all", None), *_sums("cur", current), *_sums("prev", previous)).where(
        ledger.c.project_id == project_id
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    total, cur, prev = _window(row, "all"), _window(row, "cur"), _window(row, "prev")

    def moving(key: str) -> dict[str, Any]:
        return {"value": trend(cur[key], prev[key]), "period": "24h"}

    return {
        "project_id": project_id,
        "cost": total["cost"],
        "costTrend": moving("cost"),
        "tokens": total["tokens"],
        "tokensTrend": moving("tokens"),
        "calls": total["calls"],
        "callsTrend": moving("calls"),
        "avgTime": total["avgTime"],
        "timeTrend": moving("avgTime"),
        "costSaved": total["costSaved"],
        "cacheHits": total["cacheHits"],
        "last24h": cur,
        "previous24h": prev,
    }
