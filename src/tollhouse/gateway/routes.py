"""Gateway routes: raw Starlette handlers (no pydantic round-trip of bodies on the hot path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollhouse.errors import PayloadTooLarge, TollhouseError
from tollhouse.gateway.batch import BatchRunner, parse_batch
from tollhouse.gateway.call import Endpoint, Protocol, parse_call
from tollhouse.gateway.pipeline import GatewayService
from tollhouse.gateway.responses import gateway_error, to_response
from tollhouse.http import JSONResponse
from tollhouse.ids import new_id

Handler = Callable[[Request], Awaitable[Response]]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes", details={"limit_bytes": limit})
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"request body is larger than {limit} bytes", details={"limit_bytes": limit}
            )
        parts.append(chunk)
    return b"".join(parts)


def request_headers(request: Request) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}


def gateway_handler(endpoint: Endpoint) -> Handler:
    async def handle(request: Request) -> Response:
        gateway: GatewayService = request.app.state.gateway
        limit: int = request.app.state.settings.gateway.max_body_bytes
        try:
            raw = await read_body(request, limit)
            call = parse_call(endpoint, raw, request_headers(request), request.url.query)
        except TollhouseError as exc:
            gateway.note_refusal(exc)
            return gateway_error(exc, endpoint.protocol, new_id("req"))
        try:
            result = await gateway.serve(call)  # records the failure row itself
        except TollhouseError as exc:
            response = gateway_error(exc, endpoint.protocol, call.request_id)
        else:
            response = to_response(result)
        if call.rate_headers:
            response.headers.update(call.rate_headers)
        return response

    handle.__name__ = "gateway_" + endpoint.name.lower()
    return handle


async def list_models(request: Request) -> Response:
    """Configured model names, in OpenAI's shape, or Anthropic's when the caller is an Anthropic SDK."""
    gateway: GatewayService = request.app.state.gateway
    protocol = Protocol.ANTHROPIC if "anthropic-version" in request.headers else Protocol.OPENAI
    try:
        await request.app.state.tenancy.gate.authenticate(request_headers(request))
    except TollhouseError as exc:
        return gateway_error(exc, protocol, new_id("req"))
    models = gateway.registry.listed_models()
    if "anthropic-version" in request.headers:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
            for m, _ in models
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    return JSONResponse(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": p} for m, p in models],
        }
    )


async def batch(request: Request) -> Response:
    """Seed 001's ``POST /v1/batch``: each prompt a chat completion; partial failure is still 200."""
    state = request.app.state
    settings = state.settings.gateway
    headers = request_headers(request)
    try:
        await state.tenancy.gate.authenticate(headers)
        body, items = parse_batch(await read_body(request, settings.max_body_bytes), settings.batch_max_items)
    except TollhouseError as exc:
        state.gateway.note_refusal(exc)
        return gateway_error(exc, Protocol.OPENAI, new_id("req"))
    runner = BatchRunner(state.gateway, concurrency=settings.batch_concurrency)
    return JSONResponse(await runner.run(body, items, headers))


def routes() -> list[Route]:
    return [
        Route(Endpoint.CHAT.value, gateway_handler(Endpoint.CHAT), methods=["POST"]),
        Route(Endpoint.COMPLETIONS.value, gateway_handler(Endpoint.COMPLETIONS), methods=["POST"]),
        Route(Endpoint.EMBEDDINGS.value, gateway_handler(Endpoint.EMBEDDINGS), methods=["POST"]),
        Route(Endpoint.MESSAGES.value, gateway_handler(Endpoint.MESSAGES), methods=["POST"]),
        Route(Endpoint.COUNT_TOKENS.value, gateway_handler(Endpoint.COUNT_TOKENS), methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/batch", batch, methods=["POST"]),
    ]


__all__ = ["Protocol", "routes"]
