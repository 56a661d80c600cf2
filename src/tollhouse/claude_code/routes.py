"""Seed 003's API (ccboard) over ``ClaudeCodeService``: thin handlers, logic lives in the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from tollhouse.claude_code.service import ClaudeCodeService
from tollhouse.errors import ServiceUnavailable
from tollhouse.events.bus import Event, EventBroadcaster
from tollhouse.http import JSONResponse

router = APIRouter(tags=["claude-code"])

EVENT_TYPES = frozenset({"stats_updated", "session_created", "session_updated", "config_changed"})


def _service(request: Request) -> ClaudeCodeService:
    service: ClaudeCodeService | None = getattr(request.app.state, "claude_code", None)
    if service is None:
        raise ServiceUnavailable(
            "Claude Code reading is disabled ([claude_code] enabled = false)",
            details={"setting": "claude_code.enabled"},
        )
    return service


@router.get("/api/health", response_class=JSONResponse)
async def health(request: Request) -> Any:
    """Whether the first import has finished, how many sessions are known, unreadable files."""
    service: ClaudeCodeService | None = getattr(request.app.state, "claude_code", None)
    if service is None:
        return {"status": "disabled", "sessions": 0, "stats_loaded": False, "first_import_done": False}
    return service.health()


@router.get("/api/stats", response_class=JSONResponse)
async def stats(request: Request) -> Any:
    return await _service(request).stats()


@router.get("/api/sessions", response_class=JSONResponse)
async def sessions(request: Request) -> Any:
    """search, project, model, since, sort (date|tokens|cost|messages|duration), order, page, limit."""
    return await _service(request).sessions(request.query_params)


@router.get("/api/sessions/recent", response_class=JSONResponse)
async def recent_sessions(request: Request) -> Any:
    return await _service(request).recent(request.query_params)


@router.get("/api/sessions/live", response_class=JSONResponse)
async def live_sessions(request: Request) -> Any:
    return await _service(request).live()


@router.get("/api/conversation/{session_id}", response_class=JSONResponse)
async def conversation(request: Request, session_id: str) -> Any:
    return await _service(request).conversation(session_id)


@router.get("/api/config/merged", response_class=JSONResponse)
async def config_merged(request: Request, project: str | None = None) -> Any:
    return await asyncio.to_thread(_service(request).config_merged, project)


@router.get("/api/hooks", response_class=JSONResponse)
async def hooks(request: Request, project: str | None = None) -> Any:
    return await asyncio.to_thread(_service(request).hooks, project)


@router.get("/api/mcp", response_class=JSONResponse)
async def mcp(request: Request, project: str | None = None) -> Any:
    return await asyncio.to_thread(_service(request).mcp, [project] if project else [])


@router.get("/api/agents", response_class=JSONResponse)
async def agents(request: Request, project: str | None = None) -> Any:
    return await asyncio.to_thread(_service(request).assets, "agents", project)


@router.get("/api/commands", response_class=JSONResponse)
async def commands(request: Request, project: str | None = None) -> Any:
    return await asyncio.to_thread(_service(request).assets, "commands", project)


@router.get("/api/skills", response_class=JSONResponse)
async def skills(request: Request, project: str | None = None) -> Any:
    return await asyncio.to_thread(_service(request).assets, "skills", project)


def _frame(event: Event, number: int) -> bytes:
    data = orjson.dumps(event.data, option=orjson.OPT_NON_STR_KEYS).decode()
    return f"id: {number}\nevent: {event.type}\ndata: {data}\n\n".encode()


async def _stream(bus: EventBroadcaster, keepalive_s: float) -> AsyncIterator[bytes]:
    with bus.subscribe(EVENT_TYPES) as subscription:
        yield b": connected\n\n"  # flushes the headers: the client knows it is subscribed
        number = 0
        while True:
            event = await subscription.get(keepalive_s)
            if event is None:
                yield b": keepalive\n\n"
                continue
            number += 1
            yield _frame(event, number)


@router.get("/api/events")
async def events(request: Request) -> StreamingResponse:
    """Server-Sent Events: stats_updated, session_created, session_updated, config_changed."""
    service = _service(request)
    return StreamingResponse(
        _stream(service.events, service.keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
