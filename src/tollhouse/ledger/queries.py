"""Read-side queries over the ledger (indexed on project and time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger

TOKENS = (
    ledger.c.input_tokens
    + ledger.c.cache_read_tokens
    + ledger.c.cache_write_5m_tokens
    + ledger.c.cache_write_1h_tokens
    + ledger.c.output_tokens
)


# The model a row is reported under: what served it, else what was asked for.
MODEL = func.coalesce(ledger.c.model_served, ledger.c.model_requested, "unknown")


def usage_sums() -> list[ColumnElement[Any]]:
    """The aggregate columns every report groups by: calls, tokens by kind, total tokens, cost."""
    return [
        func.count().label("calls"),
        func.coalesce(func.sum(ledger.c.input_tokens), 0).label("input"),
        func.coalesce(func.sum(ledger.c.output_tokens), 0).label("output"),
        func.coalesce(func.sum(ledger.c.cache_read_tokens), 0).label("cache_read"),
        func.coalesce(func.sum(ledger.c.cache_write_5m_tokens + ledger.c.cache_write_1h_tokens), 0).label(
            "cache_write"
        ),
        func.coalesce(func.sum(TOKENS), 0).label("tokens"),
        func.coalesce(func.sum(ledger.c.cost_nanos), 0).label("cost"),
    ]


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
    model = MODEL
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
