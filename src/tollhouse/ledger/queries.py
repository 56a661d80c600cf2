"""Read-side queries over the ledger (indexed on project and time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger

TOKENS = (
    ledger.c.input_tokens
    + ledger.c.cache_read_tokens
    + ledger.c.cache_write_5m_tokens
    + ledger.c.cache_write_1h_tokens
    + ledger.c.output_tokens
)


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    requests: int
    tokens: int
    cost_nanos: int
    unpriced: bool


async def usage_by_model(
    engine: AsyncEngine, project_id: str, start: datetime, end: datetime
) -> list[ModelUsage]:
    model = func.coalesce(ledger.c.model_served, ledger.c.model_requested, "unknown")
    query = (
        select(
            model.label("model"),
            func.count().label("requests"),
            func.coalesce(func.sum(TOKENS), 0).label("tokens"),
            func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
            func.max(ledger.c.unpriced).label("unpriced"),
        )
        .where(ledger.c.project_id == project_id, ledger.c.created_at >= start, ledger.c.created_at < end)
        .group_by(model)
        .order_by(model)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [ModelUsage(r.model, int(r.requests), int(r.tokens), int(r.cost), bool(r.unpriced)) for r in rows]
