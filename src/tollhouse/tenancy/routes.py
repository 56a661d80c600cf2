"""Seed 004's dashboard API for projects, keys, provider keys and budgets (thin HTTP)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tollhouse.errors import InvalidParameter
from tollhouse.http import JSONResponse
from tollhouse.tenancy.auth import Principal, principal
from tollhouse.tenancy.keys import KeyKind
from tollhouse.tenancy.service import Tenancy
from tollhouse.tenancy.store import PROJECT_BUDGET, Budget, KeyRow, ProjectRow
from tollhouse.tenancy.usage import project_stats
from tollhouse.timeutil import Period, period_bounds

router = APIRouter(prefix="/api/projects", tags=["projects"], default_response_class=JSONResponse)
Who = Annotated[Principal, Depends(principal)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewProject(_Body):
    name: str = Field(min_length=1, max_length=200)
    provider: str | None = Field(default=None, max_length=64)
    plan: str | None = None
    org_id: str | None = Field(default=None, max_length=64)


class ProjectPatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str | None = None
    provider: str | None = Field(default=None, max_length=64)


class NewKeyBody(_Body):
    name: str = Field(default="API key", min_length=1, max_length=200)
    type: Literal["project", "test"] = "project"


class ProviderKeyBody(_Body):
    provider: str = Field(min_length=1, max_length=64)
    api_key: str = Field(min_length=1, max_length=4096)


class BudgetBody(_Body):
    period: Literal["day", "week", "month"] = "month"
    limit_usd: float | None = Field(default=None, ge=0)
    limit_tokens: int | None = Field(default=None, ge=0)


def _iso(row: Any) -> str:
    return str(row.isoformat().replace("+00:00", "Z"))


def _key_json(key: KeyRow) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "type": "test" if key.kind is KeyKind.TEST else "project",
        "key": key.hint,
        "last_used_at": _iso(key.last_used_at) if key.last_used_at else None,
        "created_at": _iso(key.created_at),
    }


def _project_json(row: ProjectRow, plan: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "provider": row.provider,
        "plan": plan,
        "org_id": row.org_id,
        "created_at": _iso(row.created_at),
    }


def _tenancy(request: Request) -> Tenancy:
    tenancy: Tenancy = request.app.state.tenancy
    return tenancy


async def _owned(request: Request, who: Principal, project_id: str, *, write: bool) -> ProjectRow:
    if write:
        who.require_admin()
    else:
        who.may_read(project_id)
    return await _tenancy(request).project(project_id, who.org_id)


@router.get("")
async def list_projects(request: Request, who: Who) -> Any:
    tenancy = _tenancy(request)
    if who.admin:
        rows = await tenancy.store.list_projects(who.org_id)
    else:
        rows = [await tenancy.project(str(who.project_id))]
    month_start, _ = period_bounds(Period.MONTH, tenancy.settings.zone)
    stats = await project_stats(tenancy.store.engine, [r.id for r in rows], month_start)
    projects = []
    for row in rows:
        item = _project_json(row, tenancy.plans.get(row.plan).name)
        s = stats[row.id]
        item["stats"] = {k: s[k] for k in ("requests_this_month", "cost_this_month", "cache_hit_rate")}
        projects.append(item)
    return {"projects": projects}


@router.post("", status_code=201)
async def create_project(request: Request, body: NewProject, who: Who) -> Any:
    who.require_admin()
    tenancy = _tenancy(request)
    org_id = who.org_id or body.org_id
    project, key, made = await tenancy.create_project(
        body.name, org_id=org_id, plan=body.plan, provider=body.provider, key_name="Default key"
    )
    return JSONResponse(
        {
            **_project_json(project, tenancy.plans.get(project.plan).name),
            "api_key": made.secret,
            "api_key_id": key.id,
        },
        status_code=201,
    )


@router.get("/{project_id}")
async def get_project(request: Request, project_id: str, who: Who) -> Any:
    tenancy = _tenancy(request)
    row = await _owned(request, who, project_id, write=False)
    month_start, _ = period_bounds(Period.MONTH, tenancy.settings.zone)
    stats = (await project_stats(tenancy.store.engine, [row.id], month_start))[row.id]
    budget = await tenancy.budget_status(row.id)
    return {
        **_project_json(row, tenancy.plans.get(row.plan).name),
        "api_keys": [_key_json(k) for k in await tenancy.store.list_keys(row.id)],
        "providers": sorted({p for _, p, _ in await tenancy.store.provider_ciphertexts(row.id)}),
        "budget": budget.as_json() if budget else None,
        "stats": stats,
    }


@router.patch("/{project_id}")
async def patch_project(request: Request, project_id: str, body: ProjectPatch, who: Who) -> Any:
    tenancy = _tenancy(request)
    await _owned(request, who, project_id, write=True)
    values = body.model_dump(exclude_unset=True)
    if values:
        await tenancy.update_project(project_id, values)
    row = await tenancy.project(project_id)
    return _project_json(row, tenancy.plans.get(row.plan).name)


@router.delete("/{project_id}")
async def delete_project(request: Request, project_id: str, who: Who) -> Any:
    await _owned(request, who, project_id, write=True)
    await _tenancy(request).delete_project(project_id)
    return {"success": True, "message": "Project deleted"}


@router.post("/{project_id}/keys", status_code=201)
async def create_key(request: Request, project_id: str, who: Who, body: NewKeyBody | None = None) -> Any:
    await _owned(request, who, project_id, write=True)
    body = body or NewKeyBody()
    kind = KeyKind.TEST if body.type == "test" else KeyKind.PROJECT
    key, made = await _tenancy(request).create_key(project_id, body.name, kind)
    return JSONResponse({**_key_json(key), "key": made.secret}, status_code=201)


@router.delete("/{project_id}/keys/{key_id}")
async def revoke_key(request: Request, project_id: str, key_id: str, who: Who) -> Any:
    await _owned(request, who, project_id, write=True)
    await _tenancy(request).revoke_key(project_id, key_id)
    return {"success": True, "message": "API key revoked"}


@router.post("/{project_id}/providers")
async def set_provider(request: Request, project_id: str, body: ProviderKeyBody, who: Who) -> Any:
    await _owned(request, who, project_id, write=True)
    await _tenancy(request).set_provider_key(project_id, body.provider, body.api_key)
    return {"success": True, "message": "Provider key updated", "provider": body.provider}


@router.delete("/{project_id}/providers/{provider}")
async def delete_provider(request: Request, project_id: str, provider: str, who: Who) -> Any:
    await _owned(request, who, project_id, write=True)
    await _tenancy(request).delete_provider_key(project_id, provider)
    return {"success": True, "message": "Provider key removed", "provider": provider}


def budget_from(body: BudgetBody, key_id: str) -> Budget:
    if body.limit_usd is None and body.limit_tokens is None:
        raise InvalidParameter("set limit_usd, limit_tokens or both", param="limit_usd")
    nanos = None if body.limit_usd is None else int(Decimal(str(body.limit_usd)) * 1_000_000_000)
    return Budget(key_id, Period(body.period), nanos, body.limit_tokens)


async def _budget_get(request: Request, who: Principal, project_id: str, key_id: str) -> Any:
    tenancy = _tenancy(request)
    await _owned(request, who, project_id, write=False)
    status = await tenancy.budget_status(project_id, key_id)
    body = {"project_id": project_id, "key_id": key_id or None}
    if status is None:
        return {**body, "period": None, "limit_usd": None, "limit_tokens": None}
    return {**body, **status.as_json()}


async def _budget_put(
    request: Request, who: Principal, project_id: str, key_id: str, body: BudgetBody
) -> Any:
    tenancy = _tenancy(request)
    await _owned(request, who, project_id, write=True)
    if key_id and await tenancy.store.get_key(project_id, key_id) is None:
        raise InvalidParameter(f"no active key {key_id!r} in this project", param="key_id")
    status = await tenancy.set_budget(project_id, budget_from(body, key_id))
    return {"project_id": project_id, "key_id": key_id or None, **status.as_json()}


@router.get("/{project_id}/budget")
async def get_budget(request: Request, project_id: str, who: Who) -> Any:
    return await _budget_get(request, who, project_id, PROJECT_BUDGET)


@router.put("/{project_id}/budget")
async def put_budget(request: Request, project_id: str, body: BudgetBody, who: Who) -> Any:
    return await _budget_put(request, who, project_id, PROJECT_BUDGET, body)


@router.delete("/{project_id}/budget")
async def delete_budget(request: Request, project_id: str, who: Who) -> Any:
    await _owned(request, who, project_id, write=True)
    await _tenancy(request).delete_budget(project_id)
    return {"success": True, "message": "Budget removed"}


@router.get("/{project_id}/keys/{key_id}/budget")
async def get_key_budget(request: Request, project_id: str, key_id: str, who: Who) -> Any:
    return await _budget_get(request, who, project_id, key_id)


@router.put("/{project_id}/keys/{key_id}/budget")
async def put_key_budget(request: Request, project_id: str, key_id: str, body: BudgetBody, who: Who) -> Any:
    return await _budget_put(request, who, project_id, key_id, body)
