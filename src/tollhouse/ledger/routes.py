"""``GET /v1/usage`` (seed 001): a project's tokens and cost in the current calendar period."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollhouse.errors import InvalidParameter
from tollhouse.http import JSONResponse
from tollhouse.ledger.queries import usage_by_model
from tollhouse.timeutil import Period, period_bounds

router = APIRouter(tags=["usage"])


@router.get("/v1/usage", response_class=JSONResponse)
async def project_usage(request: Request, project_id: str = "default", period: str = "month") -> Any:
    """Tokens and cost for `project_id` in the current day, week or month (configured time zone)."""
    try:
        chosen = Period(period)
    except ValueError:
        raise InvalidParameter(
            f"period must be one of day, week, month (got {period!r})",
            param="period",
            details={"period": period},
        ) from None
    state = request.app.state
    project_id, budget = await state.tenancy.usage_scope(dict(request.headers), project_id)
    start, end = period_bounds(chosen, state.settings.zone)
    models = await usage_by_model(state.engine, project_id, start, end)
    total_nanos = sum(m.cost_nanos for m in models)
    return {
        "project_id": project_id,
        "period": chosen.value,
        "period_start": start.isoformat().replace("+00:00", "Z"),
        "period_end": end.isoformat().replace("+00:00", "Z"),
        "total_requests": sum(m.requests for m in models),
        "total_tokens": sum(m.tokens for m in models),
        "total_cost": total_nanos / 1e9,
        "by_model": {
            m.model: {"requests": m.requests, "tokens": m.tokens, "cost": m.cost_nanos / 1e9} for m in models
        },
        "unpriced_models": [m.model for m in models if m.unpriced],
        **budget,
    }
