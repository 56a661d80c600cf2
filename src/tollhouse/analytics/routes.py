"""``GET /api/machine/stats``: thin HTTP over ``machine_stats``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollhouse.analytics.machine import machine_stats
from tollhouse.http import JSONResponse

router = APIRouter(tags=["analytics"])


@router.get("/api/machine/stats", response_class=JSONResponse)
async def machine(request: Request) -> Any:
    """Cost, calls and tokens per project and model across the whole ledger (all sources)."""
    state = request.app.state
    return await machine_stats(state.engine, state.settings.zone)
