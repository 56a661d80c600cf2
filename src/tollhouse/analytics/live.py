"""The periodic ``analytics`` event and the terminal's ``stats``: a cheap summary of the last
24 hours (one indexed aggregate over ``created_at``) beside the cache and override counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger
from tollhouse.ledger.queries import TOKENS

if TYPE_CHECKING:
    from tollhouse.gateway.pipeline import GatewayService


async def last_day(engine: AsyncEngine, now: datetime | None = None) -> dict[str, Any]:
    since = (now or datetime.now(UTC)) - timedelta(hours=24)
    query = select(
        func.count().label("calls"),
        func.coalesce(func.sum(TOKENS), 0).label("tokens"),
        func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
        func.coalesce(func.sum(ledger.c.saved_cost_nanos), 0).label("saved"),
        func.coalesce(func.sum(case((ledger.c.cached, 1), else_=0)), 0).label("hits"),
        func.count(func.distinct(ledger.c.project_id)).label("projects"),
    ).where(ledger.c.created_at >= since)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return {
        "window": "24h",
        "calls": int(row.calls),
        "tokens": int(row.tokens),
        "cost": int(row.cost) / 1e9,
        "costSaved": int(row.saved) / 1e9,
        "cacheHits": int(row.hits),
        "activeProjects": int(row.projects),
    }


async def summary(engine: AsyncEngine, gateway: GatewayService) -> dict[str, Any]:
    cache = await gateway.cache.stats() if gateway.cache is not None else None
    overrides = gateway.override_stats
    return {
        "last24h": await last_day(engine),
        "cache": cache,
        "overrides": {
            "enabled": overrides.enabled,
            "total": overrides.total,
            "cost_saved_usd": overrides.saved_nanos / 1e9,
        },
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
