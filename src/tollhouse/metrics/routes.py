"""``GET /metrics``: Prometheus text format, from this app's own registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tollhouse.metrics.collector import CONTENT_TYPE
from tollhouse.tenancy.auth import Principal, principal

router = APIRouter(tags=["metrics"])
Who = Annotated[Principal, Depends(principal)]


@router.get("/metrics")
async def metrics(request: Request, who: Who) -> Response:
    """Requests, tokens, cost, cache hits, savings, overhead, upstream latency, TTFT, refusals."""
    who.require_admin()
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE)
