"""Live surfaces over the one bus: ``GET /api/stream`` (SSE) and ``WS /terminal`` (seed 000).

Both authenticate like every management route. An admin sees every event; a project key sees
only its own project's events (and no machine-wide ``analytics``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse, ServerSentEvent

from tollhouse.errors import TollhouseError
from tollhouse.events.bus import Event, EventBroadcaster
from tollhouse.events.terminal import Terminal
from tollhouse.tenancy.auth import Principal, principal

router = APIRouter(tags=["events"])
Who = Annotated[Principal, Depends(principal)]

STREAM_EVENTS = frozenset({"analytics", "model_override", "cache_hit", "cache_miss", "error"})


def visible(event: Event, who: Principal) -> bool:
    if who.admin:
        return True
    return event.type != "analytics" and event.data.get("project_id") == who.project_id


async def _sse(bus: EventBroadcaster, who: Principal) -> AsyncIterator[ServerSentEvent]:
    with bus.subscribe(STREAM_EVENTS) as subscription:
        async for event in subscription:
            if visible(event, who):
                data = orjson.dumps(event.data, option=orjson.OPT_NON_STR_KEYS).decode()
                yield ServerSentEvent(data=data, event=event.type)


@router.get("/api/stream")
async def stream(request: Request, who: Who) -> EventSourceResponse:
    """Server-Sent Events: analytics, model_override, cache_hit, cache_miss, error; `: ping` keep-alives."""
    state = request.app.state
    return EventSourceResponse(
        _sse(state.events, who),
        ping=state.settings.events.keepalive_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/terminal")
async def terminal(websocket: WebSocket) -> None:
    """Seed 000's terminal: JSON ``{"type": "command", "command": …}`` in, ``{"type": "output"}`` out."""
    try:
        who = await principal(websocket)
    except TollhouseError as exc:
        await websocket.close(code=4401 if exc.status_code == 401 else 4403, reason=exc.message)
        return
    await websocket.accept()
    session = Terminal(websocket.app.state, who)
    sending = asyncio.Lock()  # replies and pushed events share one socket

    async def send(message: dict[str, Any]) -> None:
        async with sending:
            await websocket.send_text(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode())

    async def push(event: Event) -> None:
        if visible(event, who):
            at = event.at.isoformat().replace("+00:00", "Z")
            await send({"type": "event", "event": event.type, "data": event.data, "timestamp": at})

    async with session.live(push):
        with contextlib.suppress(WebSocketDisconnect):
            await send({"type": "output", "content": session.greeting()})
            while True:
                reply, done = await session.run(_command(await websocket.receive_text()))
                await send(reply)
                if done:
                    await websocket.close()
                    return


def _command(text: str) -> str:
    """A JSON ``{"type": "command", "command": "…"}`` message, or a bare command (``websocat``)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            message = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return stripped
        if isinstance(message, dict):
            return str(message.get("command", "")).strip()
    return stripped
