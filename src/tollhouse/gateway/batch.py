"""``POST /v1/batch`` (seed 001): many prompts, each answered as its own chat completion.

Each item goes through the whole pipeline (auth, limits, budget, model resolution, cache, one
ledger row), at most ``gateway.batch_concurrency`` at a time. An item that fails (bad input, a
budget refusal, a provider error, its timeout) is reported in its own ``status``/``error``; the
batch still answers 200 with totals over the items that completed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tollhouse.errors import (
    InvalidParameter,
    MalformedJSON,
    MissingField,
    TollhouseError,
    UpstreamTimeout,
)
from tollhouse.gateway.call import Endpoint, parse_call
from tollhouse.gateway.pipeline import GatewayService
from tollhouse.gateway.results import BodyResult

# Request fields passed on to every item's chat completion.
_SHARED = ("model", "project_id", "max_tokens", "temperature", "top_p", "stop")


def _items(body: Any, max_items: int) -> list[Any]:
    if not isinstance(body, dict):
        raise MalformedJSON("request body must be a JSON object")
    prompts = body.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        raise MissingField("'prompts' is required: a non-empty array of {prompt, id}", param="prompts")
    if len(prompts) > max_items:
        raise InvalidParameter(
            f"at most {max_items} prompts per batch (got {len(prompts)})",
            param="prompts",
            details={"limit": max_items},
        )
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise InvalidParameter("'timeout' must be a positive number of seconds", param="timeout")
    return prompts


def parse_batch(raw: bytes, max_items: int) -> tuple[dict[str, Any], list[Any]]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc
    return body, _items(body, max_items)


class BatchRunner:
    def __init__(self, gateway: GatewayService, *, concurrency: int) -> None:
        self._gateway = gateway
        self._concurrency = concurrency

    async def run(self, body: dict[str, Any], items: list[Any], headers: dict[str, str]) -> dict[str, Any]:
        shared = {k: body[k] for k in _SHARED if body.get(k) is not None}
        timeout = body.get("timeout")
        limit = asyncio.Semaphore(self._concurrency)

        async def one(index: int, item: Any) -> dict[str, Any]:
            async with limit:
                return await self._item(index, item, shared, headers, timeout)

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        done = [r for r in results if r["status"] == "completed"]
        return {
            "total": len(results),
            "completed": len(done),
            "failed": len(results) - len(done),
            "results": results,
            "total_cost": sum(r["cost"] for r in done),
            "total_tokens": sum(r["usage"]["total_tokens"] for r in done),
        }

    async def _item(
        self,
        index: int,
        item: Any,
        shared: dict[str, Any],
        headers: dict[str, str],
        limit_s: float | None,
    ) -> dict[str, Any]:
        item_id = str(item.get("id", index)) if isinstance(item, dict) else str(index)
        prompt = item.get("prompt") if isinstance(item, dict) else None
        out: dict[str, Any] = {"id": item_id, "prompt": prompt}
        if not isinstance(prompt, str) or not prompt.strip():
            return _failed(out, MissingField("each item needs a non-empty 'prompt' string", param="prompt"))
        raw = orjson.dumps({**shared, "messages": [{"role": "user", "content": prompt}]})
        try:
            call = parse_call(Endpoint.CHAT, raw, headers, "")
        except TollhouseError as exc:
            return _failed(out, exc)
        try:
            result = await asyncio.wait_for(self._gateway.serve(call), limit_s)
        except TimeoutError:
            late = UpstreamTimeout(f"no answer within {limit_s} s", details={"timeout_s": limit_s})
            self._gateway.record_failure(call, late)
            return _failed(out, late)
        except TollhouseError as exc:
            return _failed(out, exc)
        assert isinstance(result, BodyResult)  # a batch item never streams
        answer = orjson.loads(result.body)
        usage = answer.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        cached = result.headers.get("x-tollhouse-cached") == "true"
        if cached:
            prompt_tokens = completion_tokens = 0  # nothing was paid for: the saving is in the ledger
        out.update(
            {
                "status": "completed",
                "content": answer.get("content"),
                "model": result.headers.get("x-tollhouse-served-model", call.model),
                "usage": {
                    "input_tokens": prompt_tokens,
                    "output_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "cost": float(answer.get("cost") or 0.0),
                "cached": cached,
                "request_id": call.request_id,
            }
        )
        return out


def _failed(out: dict[str, Any], exc: TollhouseError) -> dict[str, Any]:
    out.update(
        {
            "status": "failed",
            "error": {"code": exc.error_code, "message": exc.message, "status": exc.status_code},
            "content": None,
            "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
            "cost": 0.0,
        }
    )
    return out
