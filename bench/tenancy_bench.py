"""What key checking, rate limiting and budget reservation add to a gateway request.

    .venv/bin/python bench/tenancy_bench.py [--n 20000] [--redis redis://127.0.0.1:63799/0]

Drives ``Gate.admit`` + ``Gate.settle`` (exactly what the gateway runs per call) in-process, on a
real SQLite file, with a real ``th_proj_`` key, and reports CPU microseconds per request for:
key only (unlimited plan), key + plan rate limit, key + rate limit + budget reservation/settle.
With ``--redis`` it repeats the last case in cluster mode and counts Redis round trips per
request (EVALSHA calls) from the server's own ``INFO commandstats``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tollhouse.db.engine import create_engine, migrate
from tollhouse.gateway.call import Endpoint, parse_call
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.pricing.table import load_price_table
from tollhouse.settings import load_settings
from tollhouse.tenancy.service import Tenancy
from tollhouse.tenancy.store import Budget
from tollhouse.timeutil import Period

BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "max_tokens": 256, "messages": [{"role": "user", "content": "Say hello " * 40}]}
)


async def _setup(data_dir: Path, redis_url: str | None) -> tuple[Tenancy, Any, dict[str, str], str]:
    settings = load_settings(
        None,
        data_dir=data_dir,
        redis_url=redis_url,
        admin_key="bench",
        tenancy={
            "redis_prefix": f"bench{time.time_ns()}:",
            "plans": {"huge": {"requests_per_minute": 10**9}},
        },
        providers=[
            {"name": "p", "protocol": "openai", "base_url": "http://127.0.0.1:9/v1", "models": ["gpt-*"]}
        ],
    )
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    tenancy = Tenancy(settings, engine, load_price_table(), ProviderRegistry(settings.providers))
    await tenancy.start()
    project, _, made = await tenancy.create_project(
        "bench", org_id=None, plan=None, provider=None, key_name="k"
    )
    headers = {"authorization": f"Bearer {made.secret}", "content-type": "application/json"}
    return tenancy, engine, headers, project.id


async def _measure(tenancy: Tenancy, headers: dict[str, str], n: int) -> tuple[float, float]:
    gate = tenancy.gate
    calls = [parse_call(Endpoint.CHAT, BODY, headers, "") for _ in range(n)]
    for call in calls[:200]:  # warm caches, seed counters
        await gate.admit(call)
        gate.settle(call, 1000, 100)
    calls = [parse_call(Endpoint.CHAT, BODY, headers, "") for _ in range(n)]
    cpu, wall = time.process_time(), time.perf_counter()
    for call in calls:
        await gate.admit(call)
        gate.settle(call, 1000, 100)
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def embedded(n: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        tenancy, engine, headers, pid = await _setup(Path(tmp), None)
        try:
            results = [("key lookup only (unlimited plan, no budget)", *await _measure(tenancy, headers, n))]
            await tenancy.update_project(pid, {"plan": "huge"})
            results.append(("key + plan rate limit", *await _measure(tenancy, headers, n)))
            await tenancy.set_budget(pid, Budget("", Period.MONTH, 10**18, None))
            results.append(("key + rate limit + budget reserve/settle", *await _measure(tenancy, headers, n)))
            return results
        finally:
            await tenancy.close()
            await engine.dispose()


async def cluster(n: int, redis_url: str) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tenancy, engine, headers, pid = await _setup(Path(tmp), redis_url)
        try:
            await tenancy.update_project(pid, {"plan": "huge"})
            await tenancy.set_budget(pid, Budget("", Period.MONTH, 10**18, None))
            assert tenancy.redis is not None
            await _measure(tenancy, headers, 500)
            await asyncio.sleep(0.5)
            before = await tenancy.redis.info("commandstats")
            cpu, wall = await _measure(tenancy, headers, n)
            await asyncio.sleep(0.5)
            after = await tenancy.redis.info("commandstats")
            # commandstats also counts commands run inside scripts; round trips are the EVALSHAs.
            trips = int(after["cmdstat_evalsha"]["calls"]) - int(before["cmdstat_evalsha"]["calls"])
            return cpu, wall, trips / (n + 200)
        finally:
            await tenancy.close()
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--redis", default=None, help="also measure cluster mode against this Redis")
    args = parser.parse_args()
    print(f"embedded mode, {args.n} requests, CPU µs per request (wall µs in brackets)")
    for label, cpu, wall in asyncio.run(embedded(args.n)):
        print(f"  {label:<45} {cpu:7.1f}  ({wall:.1f})")
    if args.redis:
        cpu, wall, trips = asyncio.run(cluster(args.n // 4, args.redis))
        print(f"cluster mode (Redis), {args.n // 4} requests, admit + settle")
        print(
            f"  CPU µs per request {cpu:.1f}, wall µs {wall:.1f}, Redis round trips per request {trips:.2f}"
        )
        print("  (1 EVALSHA to admit, before forwarding; 1 EVALSHA to settle, after the response)")


if __name__ == "__main__":
    main()
