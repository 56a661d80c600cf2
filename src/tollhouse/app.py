"""The application factory: ``create_app(settings)``; the lifespan builds and closes every resource."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tollhouse import __version__
from tollhouse.analytics import routes as analytics_routes
from tollhouse.claude_code import routes as claude_code_routes
from tollhouse.claude_code.discovery import claude_roots
from tollhouse.claude_code.service import ClaudeCodeService
from tollhouse.db.engine import create_engine, migrate
from tollhouse.errors import TollhouseError
from tollhouse.gateway import routes as gateway_routes
from tollhouse.gateway.openapi import gateway_paths
from tollhouse.gateway.pipeline import GatewayService
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.gateway.upstream import UpstreamClient
from tollhouse.http import JSONResponse, error_body, error_response
from tollhouse.ledger import routes as ledger_routes
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing.cost import TierRule
from tollhouse.pricing.table import load_price_table
from tollhouse.service_routes import router as service_router
from tollhouse.settings import Settings
from tollhouse.tenancy import routes as tenancy_routes
from tollhouse.tenancy import usage_routes as tenancy_usage_routes
from tollhouse.tenancy.service import Tenancy

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every resource is closed in reverse order, also when start-up fails half-way.
        async with AsyncExitStack() as resources:
            engine = create_engine(settings.resolved_database_url)
            resources.push_async_callback(engine.dispose)
            await migrate(engine)
            prices = load_price_table(
                {name: o.model_dump(exclude_none=True) for name, o in settings.pricing.overrides.items()}
            )
            client = UpstreamClient(
                pool_connections=settings.gateway.pool_connections,
                retry_backoff_s=settings.gateway.retry_backoff_s,
            )
            resources.push_async_callback(client.close)
            registry = ProviderRegistry(settings.providers)
            tenancy = Tenancy(settings, engine, prices, registry)
            resources.push_async_callback(tenancy.close)  # after the ledger's: its last rows settle first
            await tenancy.start()
            ledger = LedgerWriter(
                engine,
                batch_size=settings.ledger.batch_size,
                flush_interval_ms=settings.ledger.flush_interval_ms,
                queue_size=settings.ledger.queue_size,
            )
            ledger.start()
            resources.push_async_callback(ledger.close)  # drains the queue: a stopped server loses no row
            state = app.state
            state.settings = settings
            state.engine = engine
            state.prices = prices
            state.ledger = ledger
            state.tenancy = tenancy
            state.started_at = time.monotonic()
            state.gateway = GatewayService(
                registry=registry,
                client=client,
                prices=prices,
                ledger=ledger,
                gate=tenancy.gate,
                tier_rule=TierRule(settings.pricing.long_context_rule),
            )
            state.claude_code = None
            if settings.claude_code.enabled:
                state.claude_code = ClaudeCodeService(
                    engine=engine,
                    prices=prices,
                    roots=claude_roots(settings.claude_code.config_dirs),
                    zone=settings.zone,
                    cost_mode=settings.claude_code.cost_mode,
                    watch=settings.claude_code.watch,
                )
                state.claude_code.start()  # the first import runs in a background task
                resources.push_async_callback(state.claude_code.stop)
            log.info(
                "tollhouse %s ready; prices %s; %d providers",
                __version__,
                prices.version,
                len(settings.providers),
            )
            yield

    app = FastAPI(
        title="Tollhouse",
        version=__version__,
        description="Self-hosted cost control plane for AI and cloud spend.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url="/docs",
        redoc_url="/redoc",
        # FastAPI's built-in OpenTelemetry probes cost ~4 us on every request; nothing here uses them.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_exception_handler(TollhouseError, _tollhouse_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for route in gateway_routes.routes():
        app.router.routes.append(route)
    _document_gateway_routes(app)
    app.include_router(service_router)
    app.include_router(ledger_routes.router)
    app.include_router(tenancy_routes.router)
    app.include_router(tenancy_usage_routes.router)
    app.include_router(claude_code_routes.router)
    app.include_router(analytics_routes.router)
    return app


def _document_gateway_routes(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema["paths"] = {**gateway_paths(), **schema["paths"]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _tollhouse_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TollhouseError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems: list[dict[str, Any]] = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "reason": err.get("msg", "")}
        for err in exc.errors()
    ]
    message = "; ".join(f"{p['field']}: {p['reason']}" for p in problems) or "invalid request"
    return JSONResponse(error_body("invalid_request", message, details={"errors": problems}), status_code=400)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=dict(exc.headers or {})
    )
