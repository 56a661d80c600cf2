"""Answers the gateway makes without a provider (sandbox keys, local token counts), and the
``x-tollhouse-*`` headers every forwarded answer carries."""

from __future__ import annotations

import orjson

from tollhouse.gateway.call import Call
from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.gateway.exchange import Exchange
from tollhouse.gateway.record import CallRecorder
from tollhouse.gateway.results import BodyResult, StreamResult
from tollhouse.gateway.shapes import replay
from tollhouse.gateway.upstream import UpstreamResponse
from tollhouse.ledger.entry import Outcome
from tollhouse.pricing.cost import Cost
from tollhouse.pricing.usage import Usage
from tollhouse.tenancy import sandbox

FREE = Cost(nanos=0, unpriced=False)


def answer_headers(
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
            "x-tollhouse-requested-model": call.requested_model or call.model,
            "x-tollhouse-cached": "false",
            "x-tollhouse-latency-ms": str(latency_ms),
        }
    )
    if call.rule_id is not None:
        headers["x-tollhouse-override-rule"] = call.rule_id
    if call.auto_routed:
        headers["x-tollhouse-auto-routed"] = "true"
    if cost is not None:
        headers["x-tollhouse-cost-usd"] = cost.usd_text
    return headers


def count_locally(recorder: CallRecorder, call: Call, exchange: Exchange) -> BodyResult:
    """count_tokens for a model behind an OpenAI-protocol provider: an estimate, free."""
    tokens = prompt_tokens(call.body)
    latency = call.elapsed_ms()
    recorder.answered(
        call,
        exchange.route.provider.name,
        status=200,
        outcome=Outcome.OK,
        usage=Usage(),
        cost=FREE,
        served=exchange.route.upstream_model,
        tier=None,
        latency=latency,
        ttft=latency,
        upstream_id=None,
    )
    headers = answer_headers(call, exchange, None, FREE, latency)
    return BodyResult(200, orjson.dumps({"input_tokens": tokens}), headers)


def sandbox_answer(recorder: CallRecorder, call: Call) -> BodyResult | StreamResult:
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
    recorder.answered(
        call,
        None,
        status=200,
        outcome=Outcome.SANDBOX,
        usage=made.usage,
        cost=FREE,
        served=call.model,
        tier=None,
        latency=latency,
        ttft=latency,
        upstream_id=None,
    )
    if made.body is not None:
        return BodyResult(200, made.body, headers)
    headers["cache-control"] = "no-cache"
    return StreamResult(200, replay(made.chunks), headers)
