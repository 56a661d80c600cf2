"""``GET /api/cache/stats`` (seed 000) and ``DELETE /api/cache``: thin HTTP over the gateway's cache."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tollhouse.errors import Forbidden
from tollhouse.http import JSONResponse
from tollhouse.tenancy.auth import Principal, principal

router = APIRouter(prefix="/api/cache", tags=["cache"], default_response_class=JSONResponse)
Who = Annotated[Principal, Depends(principal)]

_OFF = {
    "cache_hits": 0,
    "cache_misses": 0,
    "hit_rate": 0.0,
    "total_requests": 0,
    "memory_usage_bytes": 0,
    "cached_items": 0,
    "enabled": False,
    "semantic_enabled": False,
}


@router.get("/stats")
async def cache_stats(request: Request, who: Who) -> Any:
    """Hits, misses, hit rate, size and savings (exact and semantic together)."""
    cache = request.app.state.gateway.cache
    return await cache.stats() if cache is not None else dict(_OFF)


async def clear_cache(request: Request, who: Principal, project_id: str | None) -> int:
    """Admins clear everything or one project; a project key only its own project's entries."""
    if not who.admin:
        if project_id not in (None, who.project_id):
            raise Forbidden("this API key belongs to another project", details={"project_id": project_id})
        project_id = who.project_id
    cache = request.app.state.gateway.cache
    return await cache.clear(project_id) if cache is not None else 0


@router.delete("")
async def delete_cache(request: Request, who: Who, project_id: str | None = None) -> Any:
    """Drop cached answers: all of them, or only ``project_id``'s."""
    removed = await clear_cache(request, who, project_id)
    return {"success": True, "removed": removed, "project_id": project_id or who.project_id}
