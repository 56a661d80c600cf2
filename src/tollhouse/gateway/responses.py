"""HTTP edge of the gateway: error shapes per protocol and a stream response that notices
a client leaving at once (not at the next write) and always closes the upstream stream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollhouse.errors import TollhouseError
from tollhouse.gateway.call import Protocol
from tollhouse.gateway.results import BodyResult, StreamResult
from tollhouse.http import utc_now_text

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def gateway_error(exc: TollhouseError, protocol: Protocol, request_id: str) -> Response:
    """OpenAI's envelope (plus SPEC's fields) or Anthropic's, so each SDK raises its own types."""
    status = exc.status_code
    body: dict[str, Any]
    if protocol is Protocol.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {
            "type": "error",
            "error": {"type": kind, "message": exc.message, "code": exc.error_code, "details": exc.details},
            "request_id": request_id,
        }
    else:
        body = {
            "error": {
                "message": exc.message,
                "type": exc.openai_type,
                "param": exc.param,
                "code": exc.error_code,
                "details": exc.details,
            },
            "request_id": request_id,
            "timestamp": utc_now_text(),
        }
    headers = {"x-tollhouse-request-id": request_id, **exc.headers}
    if protocol is Protocol.ANTHROPIC:
        headers["request-id"] = request_id
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def to_response(result: BodyResult | StreamResult) -> Response:
    if isinstance(result, BodyResult):
        return Response(
            result.body, status_code=result.status, headers=result.headers, media_type="application/json"
        )
    return EventStreamResponse(result.chunks, status_code=result.status, headers=result.headers)


class EventStreamResponse(Response):
    """Streams SSE bytes; a disconnect cancels the producer, whose cleanup records the call."""

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes], status_code: int, headers: dict[str, str]) -> None:
        self._chunks = chunks
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def produce(cancel: anyio.CancelScope) -> None:
            with contextlib.suppress(OSError):
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                async for chunk in self._chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            cancel.cancel()

        async def watch(cancel: anyio.CancelScope) -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    cancel.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(produce, group.cancel_scope)
                group.start_soon(watch, group.cancel_scope)
        finally:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
