"""HTTP edge helpers shared by every router: JSON responses and the SPEC error shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from tollhouse.errors import TollhouseError
from tollhouse.ids import new_id


class JSONResponse(Response):
    """orjson-rendered JSON (about 14x faster than the stdlib on our payloads)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def error_body(
    code: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "details": details or {}}
    if extra:
        error.update(extra)
    return {"error": error, "request_id": request_id or new_id("req"), "timestamp": utc_now_text()}


def error_response(exc: TollhouseError, request_id: str | None = None) -> JSONResponse:
    """The SPEC shape, for management and service routes."""
    rid = request_id or new_id("req")
    body = error_body(exc.error_code, exc.message, details=exc.details, request_id=rid)
    headers = {"x-tollhouse-request-id": rid, **exc.headers}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)
