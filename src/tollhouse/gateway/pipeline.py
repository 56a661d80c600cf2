"""The gateway pipeline: resolve the provider, forward with fallback, price, record.

    call → routes for the model → for each route (fallback order): exchange → upstream
         → answer (whole or streamed) → usage → cost → ledger row + response headers

Every call ends as exactly one ledger row, whatever its outcome: success, upstream error,
or a client that went away mid-stream (recorded with the usage seen so far).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tollhouse.errors import NoProvider, TollhouseError, UpstreamError, UpstreamRejected
from tollhouse.gateway.call import Call, Endpoint
from tollhouse.gateway.call import Protocol as WireProtocol
from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.gateway.exchange import Exchange, exchange_for
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.gateway.results import BodyResult, StreamResult
from tollhouse.gateway.sse import SSEParser, encode
from tollhouse.gateway.taps import StreamTap
from tollhouse.gateway.upstream import UpstreamClient, UpstreamResponse
from tollhouse.ledger.entry import LedgerEntry, Outcome
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing.cost import Cost, TierRule, compute_cost
from tollhouse.pricing.table import PriceTable
from tollhouse.pricing.usage import Usage
from tollhouse.tenancy import sandbox
from tollhouse.tenancy.gate import Gate

log = logging.getLogger(__name__)

SOURCE = "gateway"


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
    ) -> None:
        self._registry = registry
        self._client = client
        self._prices = prices
        self._ledger = ledger
        self._gate = gate
        self._tier_rule = tier_rule

    @property
    def registry(self) -> ProviderRegistry:
        return self._registry

    async def handle(self, call: Call) -> BodyResult | StreamResult:
        if call.sandbox:
            return self._sandbox(call)
        exchanges = self._exchanges(call)
        if call.endpoint is Endpoint.COUNT_TOKENS and exchanges[0].upstream_protocol is WireProtocol.OPENAI:
            return self._count_locally(call, exchanges[0])
        exchange, upstream = await self._send(call, exchanges)
        if call.stream:
            return self._stream(call, exchange, upstream)
        return await self._whole(call, exchange, upstream)

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
        assert last is not None
        raise last

    async def _whole(self, call: Call, exchange: Exchange, upstream: UpstreamResponse) -> BodyResult:
        raw = await upstream.read()
        answer = exchange.parse(raw)
        served = answer.model or exchange.route.upstream_model
        cost = self._price(answer.usage, served, exchange.route.upstream_model, answer.service_tier)
        latency = call.elapsed_ms()
        headers = self._headers(call, exchange, upstream, cost, latency)
        body = answer.body
        if isinstance(body, dict):
            body = orjson.dumps(_with_seed_fields(body, call, cost, latency))
        self._record(
            call,
            exchange,
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
        return BodyResult(upstream.status, body, headers)

    def _stream(self, call: Call, exchange: Exchange, upstream: UpstreamResponse) -> StreamResult:
        headers = self._headers(call, exchange, upstream, None, call.elapsed_ms())
        headers["cache-control"] = "no-cache"
        return StreamResult(upstream.status, self._relay(call, exchange, upstream), headers)

    async def _relay(
        self, call: Call, exchange: Exchange, upstream: UpstreamResponse
    ) -> AsyncIterator[bytes]:
        tap: StreamTap = exchange.tap()
        parser = SSEParser()
        first_byte: int | None = None
        outcome = Outcome.CLIENT_DISCONNECTED
        error: TollhouseError | None = None
        try:
            async for chunk in upstream.iter_chunks():
                if first_byte is None:
                    first_byte = call.elapsed_ms()
                for event in parser.feed(chunk):
                    for out in tap.feed(event):
                        yield out
            for out in tap.finish():
                yield out
            if tap.error is not None:
                error = UpstreamError(str(tap.error.get("message", "provider error mid-stream")))
            elif not tap.completed:
                error = UpstreamError("the provider's stream ended before its final event")
            outcome = Outcome.ERROR if error else Outcome.OK
        except UpstreamError as exc:
            outcome, error = Outcome.ERROR, exc
            yield _stream_error(call, exc)
        finally:
            if outcome == Outcome.CLIENT_DISCONNECTED:
                upstream.close()
            else:
                upstream.release()
            served = tap.model or exchange.route.upstream_model
            usage = tap.usage
            cost = self._price(usage, served, exchange.route.upstream_model, tap.service_tier)
            self._record(
                call,
                exchange,
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

    def _count_locally(self, call: Call, exchange: Exchange) -> BodyResult:
        """count_tokens for a model behind an OpenAI-protocol provider: an estimate, free."""
        tokens = prompt_tokens(call.body)
        latency = call.elapsed_ms()
        zero = Cost(nanos=0, unpriced=False)
        self._record(
            call,
            exchange,
            status=200,
            outcome=Outcome.OK,
            usage=Usage(),
            cost=zero,
            served=exchange.route.upstream_model,
            tier=None,
            latency=latency,
            ttft=latency,
            upstream_id=None,
        )
        headers = self._headers(call, exchange, None, zero, latency)
        return BodyResult(200, orjson.dumps({"input_tokens": tokens}), headers)

    def _sandbox(self, call: Call) -> BodyResult | StreamResult:
        """A th_test_ key: an answer made here, never sent upstream, free."""
        made = sandbox.answer(call)
        latency = call.elapsed_ms()
        headers = {
            "x-tollhouse-request-id": call.request_id,
            "x-tollhouse-provider": "sandbox",
            "x-tollhouse-served-model": call.model,
            "x-tollhouse-cached": "false",
            "x-tollhouse-cost-usd": "0",
            "x-tollhouse-latency-ms": str(latency),
            "x-tollhouse-sandbox": "true",
        }
        self._record(
            call,
            None,
            status=200,
            outcome=Outcome.SANDBOX,
            usage=made.usage,
            cost=Cost(nanos=0, unpriced=False),
            served=call.model,
            tier=None,
            latency=latency,
            ttft=latency,
            upstream_id=None,
        )
        if made.body is not None:
            return BodyResult(200, made.body, headers)
        headers["cache-control"] = "no-cache"
        return StreamResult(200, _replay(made.chunks), headers)

    def _price(self, usage: Usage, served: str, asked: str, tier: str | None) -> Cost:
        price = self._prices.lookup(served) or self._prices.lookup(asked)
        return compute_cost(usage, price, tier_rule=self._tier_rule, service_tier=tier)

    def _headers(
        self,
        call: Call,
        exchange: Exchange,
        upstream: UpstreamResponse | None,
        cost: Cost | None,
        latency_ms: int,
    ) -> dict[str, str]:
        headers = upstream.passed_back_headers() if upstream is not None else {}
        headers.update(
            {
                "x-tollhouse-request-id": call.request_id,
                "x-tollhouse-provider": exchange.route.provider.name,
                "x-tollhouse-served-model": exchange.route.upstream_model,
                "x-tollhouse-cached": "false",
                "x-tollhouse-latency-ms": str(latency_ms),
            }
        )
        if cost is not None:
            headers["x-tollhouse-cost-usd"] = cost.usd_text
        return headers

    def _record(
        self,
        call: Call,
        exchange: Exchange | None,
        *,
        status: int,
        outcome: str,
        usage: Usage,
        cost: Cost,
        served: str | None,
        tier: str | None,
        latency: int,
        ttft: int | None,
        upstream_id: str | None,
        error: TollhouseError | None = None,
    ) -> None:
        self._gate.settle(call, cost.nanos, usage.total_tokens)
        self._ledger.record(
            LedgerEntry(
                id=_log_id(call),
                request_id=call.request_id,
                created_at=call.created_at,
                project_id=call.project_id,
                api_key_id=call.api_key_id,
                source=SOURCE,
                route=call.endpoint.value,
                provider=exchange.route.provider.name if exchange else None,
                model_requested=call.model,
                model_served=served,
                stream=call.stream,
                status_code=status,
                outcome=outcome,
                usage=usage,
                cost_nanos=cost.nanos,
                unpriced=cost.unpriced,
                price_version=self._prices.version,
                service_tier=tier,
                latency_ms=latency,
                ttft_ms=ttft,
                upstream_request_id=upstream_id,
                error_code=error.error_code if error else None,
                error_message=error.message if error else None,
            )
        )

    def record_failure(self, call: Call, exc: TollhouseError) -> None:
        """The ledger row for a call refused or failed before any answer reached the client."""
        self._gate.settle(call, 0, 0)  # releases the reservation
        provider = exc.details.get("provider") if isinstance(exc.details.get("provider"), str) else None
        self._ledger.record(
            LedgerEntry(
                id=_log_id(call),
                request_id=call.request_id,
                created_at=call.created_at,
                project_id=call.project_id,
                api_key_id=call.api_key_id,
                source=SOURCE,
                route=call.endpoint.value,
                provider=provider,
                model_requested=call.model,
                stream=call.stream,
                status_code=exc.status_code,
                outcome=Outcome.ERROR,
                price_version=self._prices.version,
                latency_ms=call.elapsed_ms(),
                error_code=exc.error_code,
                error_message=exc.message,
            )
        )


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _log_id(call: Call) -> str:
    return "log_" + call.request_id.removeprefix("req_")


def _local_count(call: Call, route: Any) -> Exchange | None:
    if route.provider.protocol != WireProtocol.OPENAI.value:
        return None
    return Exchange(call, route)


def _with_seed_fields(body: dict[str, Any], call: Call, cost: Cost, latency: int) -> dict[str, Any]:
    """Seed 001's ``cost``/``project_id``/``content`` and seed 004's ``x-tollhouse-*`` body fields."""
    content = None
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            content = message.get("content")
    body["cost"] = cost.usd
    body["project_id"] = call.project_id
    body["content"] = content
    body["x-tollhouse-cached"] = False
    body["x-tollhouse-cost-usd"] = cost.usd_text
    body["x-tollhouse-latency-ms"] = latency
    return body


def _stream_error(call: Call, exc: TollhouseError) -> bytes:
    """An error inside an already-started stream, in the client's own event format."""
    if call.endpoint.protocol is WireProtocol.ANTHROPIC:
        payload = {"type": "error", "error": {"type": "api_error", "message": exc.message}}
        return encode(orjson.dumps(payload), "error")
    payload = {
        "error": {"message": exc.message, "type": exc.openai_type, "code": exc.error_code, "param": None}
    }
    return encode(orjson.dumps(payload))
