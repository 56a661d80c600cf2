"""Service information: ``GET /`` (seed 001) and ``GET /health`` (seeds 000, 001 and 004 together)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from tollhouse import __version__
from tollhouse.http import JSONResponse, utc_now_text

router = APIRouter(tags=["service"])


@router.get("/", response_class=JSONResponse)
async def root() -> Any:
    return {
        "name": "Tollhouse",
        "version": __version__,
        "docs": "/docs",
        "health": "/health",
        "endpoints": {
            "chat": "/v1/chat/completions",
            "completions": "/v1/completions",
            "embeddings": "/v1/embeddings",
            "messages": "/v1/messages",
            "count_tokens": "/v1/messages/count_tokens",
            "models": "/v1/models",
            "usage": "/v1/usage",
            "batch": "/v1/batch",
            "route": "/v1/route",
            "stream": "/api/stream",
            "terminal": "/terminal",
            "metrics": "/metrics",
        },
    }


@router.get("/health", response_class=JSONResponse)
async def health(request: Request) -> Any:
    state = request.app.state
    database = "ok"
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        database = "unavailable"
    status = "ok" if database == "ok" else "degraded"
    gateway = state.gateway
    cache = gateway.cache  # this process's counters since start (seed 000): no Redis round trip
    body = {
        "status": status,
        "version": __version__,
        "timestamp": utc_now_text(),
        "uptime": int(time.monotonic() - state.started_at),
        "services": {
            "database": database,
            "ledger_writer": "running",
            "providers": len(state.settings.providers),
        },
        "ledger_pending_rows": state.ledger.pending,
        "overrides_enabled": gateway.resolver.overrides_enabled,
        "override_rules": gateway.resolver.rule_count,
        "cache_hits": cache.hits if cache is not None else 0,
        "cache_misses": cache.misses if cache is not None else 0,
        "cache_enabled": cache is not None,
    }
    return JSONResponse(body, status_code=200 if status == "ok" else 503)
