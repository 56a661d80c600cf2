"""``POST /v1/route`` (seed 001) and ``GET /api/overrides/stats`` (seed 000): thin HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.http import JSONResponse
from tollhouse.ledger.queries import usage_by_model
from tollhouse.routing.auto import BudgetView
from tollhouse.tenancy.auth import Principal, principal
from tollhouse.timeutil import Period, period_bounds

router = APIRouter(tags=["routing"], default_response_class=JSONResponse)
Who = Annotated[Principal, Depends(principal)]


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="The prompt to route.")
    context_size: int | None = Field(
        default=None, ge=0, description="Estimated context in tokens; default: estimated from the prompt."
    )
    max_tokens: int | None = Field(default=None, ge=0, description="Output allowance, added to the estimate.")
    project_id: str | None = Field(default=None, max_length=64, description="Default: `default`.")


@router.post("/v1/route")
async def route(request: Request, body: RouteRequest) -> Any:
    """The model auto-routing would pick for this prompt, why, and the project's budget status."""
    state = request.app.state
    project_id, scope = await state.tenancy.usage_scope(dict(request.headers), body.project_id or "default")
    status = await state.tenancy.budget_status(project_id)
    budget = BudgetView(status.remaining_tokens, status.remaining_nanos) if status is not None else None
    context = body.context_size
    if context is None:
        context = prompt_tokens({"prompt": body.prompt}) + (body.max_tokens or 0)
    resolver = state.gateway.resolver
    pick = resolver.recommend(body.prompt, context, budget)
    if status is not None:
        spent_tokens, spent_usd = status.spent_tokens, status.spent_nanos / 1e9
    else:
        start, end = period_bounds(Period.MONTH, state.settings.zone)
        models = await usage_by_model(state.engine, project_id, start, end)
        spent_tokens, spent_usd = sum(m.tokens for m in models), sum(m.cost_nanos for m in models) / 1e9
    return {
        "recommended_model": pick.choice,
        "model": resolver.expand_alias(pick.choice),
        "rule": pick.rule,
        "reasoning": pick.reasoning,
        "context_tokens": context,
        "project_id": project_id,
        "budget_status": {
            "total_tokens": spent_tokens,
            "total_cost": spent_usd,
            "limit": scope.get("limit"),
            "remaining": scope.get("remaining"),
            "limit_unit": scope.get("limit_unit"),
            "period": status.budget.period.value if status is not None else "month",
        },
    }


@router.get("/api/overrides/stats")
async def override_stats(request: Request, who: Who) -> Any:
    """Overrides applied since start, per requested model, with the money they saved."""
    return request.app.state.gateway.override_stats.as_json()
