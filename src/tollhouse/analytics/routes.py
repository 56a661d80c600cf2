"""Analytics over the ledger: machine (seed 000), project (seed 000) and dashboard (seed 004) stats.

Thin HTTP. A project key sees only its own project; an admin (or a JWT) may name any project,
and a JWT bound to an organisation sees only that organisation's projects.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tollhouse.analytics.dashboard import dashboard_stats
from tollhouse.analytics.machine import machine_stats
from tollhouse.analytics.project import project_stats
from tollhouse.http import JSONResponse
from tollhouse.tenancy.auth import Principal, principal

router = APIRouter(tags=["analytics"], default_response_class=JSONResponse)
Who = Annotated[Principal, Depends(principal)]


@router.get("/api/machine/stats", response_class=JSONResponse)
async def machine(request: Request, who: Who) -> Any:
    """Cost, calls and tokens per project and model across the whole ledger (all sources); admins only."""
    who.require_admin()
    state = request.app.state
    return await machine_stats(state.engine, state.settings.zone)


@router.get("/api/project/stats")
async def project(request: Request, who: Who, project_id: str | None = None) -> Any:
    """One project's totals and 24-hour trends: ``project_id``, else the caller's project, else default."""
    chosen = project_id or who.project_id or "default"
    who.may_read(chosen)
    if who.org_id is not None:
        await request.app.state.tenancy.project(chosen, who.org_id)  # 404 outside the organisation
    return await project_stats(request.app.state.engine, chosen)


@router.get("/api/dashboard/stats")
async def dashboard(request: Request, who: Who, period: str = "30d") -> Any:
    """Requests, cache hit rate, cost and savings, top models and a daily chart for ``period``."""
    state = request.app.state
    projects: list[str] | None = None
    if not who.admin:
        projects = [str(who.project_id)]
    elif who.org_id is not None:
        projects = [p.id for p in await state.tenancy.store.list_projects(who.org_id)]
    return await dashboard_stats(state.engine, state.settings.zone, period, projects)
