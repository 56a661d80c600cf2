"""``GET /api/projects/{id}/usage`` and ``…/usage/export`` (seed 004)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from tollhouse.errors import InvalidParameter
from tollhouse.http import JSONResponse
from tollhouse.tenancy.routes import Who, _owned, _tenancy
from tollhouse.tenancy.usage import UsageFilter, export_csv, usage_logs

router = APIRouter(prefix="/api/projects", tags=["usage"], default_response_class=JSONResponse)
MAX_LIMIT = 1000


def _when(value: str | None, name: str, default: datetime) -> datetime:
    if value is None:
        return default
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"{name!r} must be an ISO 8601 date or time", param=name) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _filter(project_id: str, start: str | None, end: str | None, model: str | None) -> UsageFilter:
    now = datetime.now(UTC)
    to = _when(end, "to", now + timedelta(seconds=1))
    frm = _when(start, "from", to - timedelta(days=30))
    if frm >= to:
        raise InvalidParameter("'from' must be before 'to'", param="from")
    return UsageFilter(project_id, frm, to, model or None)


@router.get("/{project_id}/usage")
async def usage(
    request: Request,
    project_id: str,
    who: Who,
    start: str | None = Query(default=None, alias="from"),
    end: str | None = Query(default=None, alias="to"),
    limit: int = Query(default=100, ge=1, le=MAX_LIMIT),
    model: str | None = None,
) -> Any:
    await _owned(request, who, project_id, write=False)
    return await usage_logs(_tenancy(request).store.engine, _filter(project_id, start, end, model), limit)


@router.get("/{project_id}/usage/export")
async def usage_export(
    request: Request,
    project_id: str,
    who: Who,
    start: str | None = Query(default=None, alias="from"),
    end: str | None = Query(default=None, alias="to"),
    limit: int | None = Query(default=None, ge=1),
    model: str | None = None,
) -> Any:
    await _owned(request, who, project_id, write=False)
    flt = _filter(project_id, start, end, model)
    return StreamingResponse(
        export_csv(_tenancy(request).store.engine, flt, limit),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="usage-{project_id}.csv"'},
    )
