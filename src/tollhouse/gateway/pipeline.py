"""The gateway pipeline: resolve the model, consult the cache, forward with fallback, price, record.

    call → identify project → resolve model (alias → override rules → auto-route)
         → cache (exact, then semantic): a hit is answered here, reserving nothing
         → rate limit + budget reserve → routes for the served model → for each route
           (fallback order): exchange → upstream → answer (whole or streamed) → usage → cost
         → ledger row + response headers + events; a fresh answer fills the cache

Every call ends as exactly one ledger row, whatever its outcome: success, cache hit, upstream
error, or a client that went away mid-stream (recorded with the usage seen so far).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tollhouse.cache.accumulate import StreamAccumulator
from tollhouse.cache.entry import contains_tool_calls
from tollhouse.errors import NoProvider, TollhouseError, UpstreamError, UpstreamRejected
from tollhouse.events.bus import EventBroadcaster
from tollhouse.gateway.cache_step import Lookup, ResponseCache, missed, serve_hit
from tollhouse.gateway.call import AUTO_MODEL, Call, Endpoint
from tollhouse.gateway.call import Protocol as WireProtocol
from tollhouse.gateway.exchange import Exchange, exchange_for
from tollhouse.gateway.local import answer_headers, count_locally, sandbox_answer
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.gateway.record import CallRecorder
from tollhouse.gateway.results import BodyResult, StreamResult
from tollhouse.gateway.shapes import stream_error, with_seed_fields
from tollhouse.gateway.sse import SSEParser
from tollhouse.gateway.taps import StreamTap
from tollhouse.gateway.upstream import UpstreamClient, UpstreamResponse
from tollhouse.ledger.entry import Outcome
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metrics.collector import GatewayMetrics
from tollhouse.pricing.cost import Cost, TierRule, compute_cost
from tollhouse.pricing.table import PriceTable
from tollhouse.pricing.usage import Usage
from tollhouse.routing.auto import BudgetView
from tollhouse.routing.resolver import ModelResolver, ResolveInput
from tollhouse.routing.stats import OverrideStats
from tollhouse.tenancy.gate import Gate
from tollhouse.tenancy.projects import ProjectView

log = logging.getLogger(__name__)


class GatewayService:
    def __init__(
        self,
        *,
        registry: ProviderRegistry,
        client: UpstreamClient,
        prices: PriceTable,
        ledger: LedgerWriter,
        gate: Gate,
        tier_rule: TierRule = TierRule.ANTHROPIC,
        resolver: ModelResolver | None = None,
        override_stats: OverrideStats | None = None,
        cache: ResponseCache | None = None,
        events: EventBroadcaster | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._registry = registry
        self._client = client
        self._prices = prices
        self._gate = gate
        self._tier_rule = tier_rule
        self.resolver = resolver or ModelResolver()
        self.override_stats = override_stats or OverrideStats(
            prices, enabled=self.resolver.overrides_enabled, rule_count=self.resolver.rule_count
        )
        self.cache = cache if cache is not None and cache.enabled else None
        self._events = events
        self._recorder = CallRecorder(
            ledger=ledger,
            gate=gate,
            price_version=prices.version,
            override_stats=self.override_stats,
            events=events,
            metrics=metrics,
        )

    @property
    def registry(self) -> ProviderRegistry:
        return self._registry

    async def serve(self, call: Call) -> BodyResult | StreamResult:
        """``handle`` plus the failure row: what every gateway route and each batch item runs."""
        try:
            return await self.handle(call)
        except TollhouseError as exc:
            if exc.status_code in (401, 403):
                self.note_refusal(exc)  # no row for an unknown caller
            else:
                self.record_failure(call, exc)
            raise

    async def handle(self, call: Call) -> BodyResult | StreamResult:
        view = await self._gate.identify(call)
        if call.sandbox:
            await self._gate.admit_view(call, view)
            return sandbox_answer(self._recorder, call)
        await self._resolve(call, view)
        found = None
        if self.cache is not None:
            found = await self.cache.lookup(call, forwards_credentials=self._forwards_credentials(call, view))
        if found is not None and found.hit is not None:
            await self._gate.admit_view(call, view, reserve=False)
            return serve_hit(self._recorder, call, found)
        await self._gate.admit_view(call, view)
        if found is not None and found.directive.lookup:
            missed(self._recorder, call, found)
        exchanges = self._exchanges(call)
        if call.endpoint is Endpoint.COUNT_TOKENS and exchanges[0].upstream_protocol is WireProtocol.OPENAI:
            return count_locally(self._recorder, call, exchanges[0])
        exchange, upstream = await self._send(call, exchanges)
        if call.stream:
            return self._stream(call, exchange, upstream, found)
        return await self._whole(call, exchange, upstream, found)

    def _forwards_credentials(self, call: Call, view: ProjectView) -> bool:
        """Whether a provider for this model has no key of its own (nor the project's BYOK key)."""
        own = view.provider_keys
        return any(
            route.provider.resolved_api_key() is None
            and not (own.get(route.provider.name) or own.get(route.provider.protocol))
            for route in self._registry.routes(call.model)
        )

    async def _resolve(self, call: Call, view: ProjectView) -> None:
        """Alias → override rules → auto-routing; afterwards ``call.model`` is the served model."""
        requested = call.model
        budget = None
        if view.budgets and requested.lower() == AUTO_MODEL:
            left = await self._gate.remaining(view)
            budget = BudgetView(*left) if left is not None else None
        res = self.resolver.resolve(
            ResolveInput(requested, call.project_id, call.headers, call.body, call.endpoint.value, budget)
        )
        served = res.served_model
        call.requested_model = requested
        call.rule_id = res.rule_id
        call.auto_routed = res.auto
        if served != call.body.get("model"):
            call.body["model"] = served
            call.body_changed = True
        call.model = served
        if res.rule_id is not None and self._events is not None:
            self._events.publish(
                "model_override",
                {
                    "model": requested,
                    "override_to": served,
                    "rule": res.rule_id,
                    "project_id": call.project_id,
                    "route": call.endpoint.value,
                    "request_id": call.request_id,
                },
            )

    def _exchanges(self, call: Call) -> list[Exchange]:
        routes = self._registry.routes(call.model)
        found = [ex for route in routes if (ex := exchange_for(call, route)) is not None]
        if call.endpoint is Endpoint.COUNT_TOKENS and not found:
            found = [ex for route in routes if (ex := _local_count(call, route)) is not None]
        if found:
            return found
        if not self._registry.providers:
            raise NoProvider(
                "no provider is configured; add a [[providers]] table to the config",
                details={"model": call.model},
                param="model",
            )
        reason = "no configured provider serves this model"
        if routes:
            reason = f"no configured provider serves {call.endpoint.value} for this model"
        raise NoProvider(f"{reason}: {call.model!r}", details={"model": call.model}, param="model")

    async def _send(self, call: Call, exchanges: list[Exchange]) -> tuple[Exchange, UpstreamResponse]:
        """Try each provider in turn; a provider's own 4xx is final, anything else falls back."""
        last: UpstreamError | None = None
        started = time.perf_counter()
        try:
            for exchange in exchanges:
                try:
                    body = exchange.upstream_body()
                    response = await self._client.send(
                        exchange.route.provider, exchange.url(), body, exchange.headers()
                    )
                    return exchange, response
                except UpstreamRejected as exc:
                    exc.details.setdefault("provider", exchange.route.provider.name)
                    raise
                except UpstreamError as exc:
                    log.warning(
                        "provider %s failed for %s: %s", exchange.route.provider.name, call.model, exc.message
                    )
                    last = exc
        finally:
            call.upstream_s += time.perf_counter() - started
        assert last is not None
        raise last

    async def _whole(
        self, call: Call, exchange: Exchange, upstream: UpstreamResponse, found: Lookup | None
    ) -> BodyResult:
        started = time.perf_counter()
        raw = await upstream.read()
        call.upstream_s += time.perf_counter() - started
        answer = exchange.parse(raw)
        served = answer.model or exchange.route.upstream_model
        cost = self._price(answer.usage, served, exchange.route.upstream_model, answer.service_tier)
        latency = call.elapsed_ms()
        headers = answer_headers(call, exchange, upstream, cost, latency)
        body = answer.body
        storable: bytes | None = body if isinstance(body, bytes) else None
        if isinstance(body, dict):
            if found is not None and found.directive.store and "error" not in body:
                storable = None if contains_tool_calls(call.endpoint.value, body) else orjson.dumps(body)
            body = orjson.dumps(with_seed_fields(body, call, cost.usd, cost.usd_text, latency))
            checked = True
        else:
            checked = False
        self._recorder.answered(
            call,
            exchange.route.provider.name,
            status=upstream.status,
            outcome=Outcome.OK,
            usage=answer.usage,
            cost=cost,
            served=served,
            tier=answer.service_tier,
            latency=latency,
            ttft=latency,
            upstream_id=upstream.request_id,
        )
        if self.cache is not None and found is not None and storable is not None and upstream.status == 200:
            await self.cache.remember(call, found, storable, answer.usage, cost.nanos, checked=checked)
        self._observe(call, exchange.route.provider.name)
        return BodyResult(upstream.status, body, headers)

    def _stream(
        self, call: Call, exchange: Exchange, upstream: UpstreamResponse, found: Lookup | None
    ) -> StreamResult:
        headers = answer_headers(call, exchange, upstream, None, call.elapsed_ms())
        headers["cache-control"] = "no-cache"
        self._observe(call, exchange.route.provider.name)
        keep = found if found is not None and found.directive.store else None
        return StreamResult(upstream.status, self._relay(call, exchange, upstream, keep), headers)

    async def _relay(
        self, call: Call, exchange: Exchange, upstream: UpstreamResponse, found: Lookup | None
    ) -> AsyncIterator[bytes]:
        tap: StreamTap = exchange.tap()
        parser = SSEParser()
        acc = StreamAccumulator(call.endpoint.value) if found is not None else None
        first_byte: int | None = None
        outcome = Outcome.CLIENT_DISCONNECTED
        error: TollhouseError | None = None
        try:
            async for chunk in upstream.iter_chunks():
                if first_byte is None:
                    first_byte = call.elapsed_ms()
                for event in parser.feed(chunk):
                    for out in tap.feed(event):
                        if acc is not None:
                            acc.feed(out)
                        yield out
            for out in tap.finish():
                if acc is not None:
                    acc.feed(out)
                yield out
            if tap.error is not None:
                error = UpstreamError(str(tap.error.get("message", "provider error mid-stream")))
            elif not tap.completed:
                error = UpstreamError("the provider's stream ended before its final event")
            outcome = Outcome.ERROR if error else Outcome.OK
        except UpstreamError as exc:
            outcome, error = Outcome.ERROR, exc
            yield stream_error(call, exc)
        finally:
            if outcome == Outcome.CLIENT_DISCONNECTED:
                upstream.close()
            else:
                upstream.release()
            served = tap.model or exchange.route.upstream_model
            usage = tap.usage
            cost = self._price(usage, served, exchange.route.upstream_model, tap.service_tier)
            self._recorder.answered(
                call,
                exchange.route.provider.name,
                status=upstream.status,
                outcome=outcome,
                usage=usage,
                cost=cost,
                served=served,
                tier=tap.service_tier,
                latency=call.elapsed_ms(),
                ttft=first_byte,
                upstream_id=upstream.request_id,
                error=error,
            )
        # Only a stream that ran to its end gets here (a disconnect leaves through ``finally``).
        if acc is not None and found is not None and outcome == Outcome.OK and upstream.status == 200:
            body = acc.result(usage)
            if body is not None and self.cache is not None:
                await self.cache.remember(call, found, body, usage, cost.nanos, checked=True)

    def _observe(self, call: Call, provider: str) -> None:
        metrics = self._recorder.metrics
        if metrics is not None:
            metrics.observe_upstream(provider, call.upstream_s)
            metrics.observe_overhead(
                call.endpoint.value, time.perf_counter() - call.started - call.upstream_s
            )

    def _price(self, usage: Usage, served: str, asked: str, tier: str | None) -> Cost:
        price = self._prices.lookup(served) or self._prices.lookup(asked)
        return compute_cost(usage, price, tier_rule=self._tier_rule, service_tier=tier)

    def record_failure(self, call: Call, exc: TollhouseError) -> None:
        """The ledger row for a call refused or failed before any answer reached the client."""
        self._recorder.failed(call, exc)

    def note_refusal(self, exc: TollhouseError) -> None:
        self._recorder.refused(exc)


def _local_count(call: Call, route: Any) -> Exchange | None:
    if route.provider.protocol != WireProtocol.OPENAI.value:
        return None
    return Exchange(call, route)
