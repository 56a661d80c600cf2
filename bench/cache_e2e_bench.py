"""End to end: gateway CPU per request for a cache hit against a cache miss.

    .venv/bin/python bench/cache_e2e_bench.py [--requests 2000] [--json out.json]

Starts the fake provider and Tollhouse (cache on, in memory) with bench/gateway_bench.py's
helpers, then at concurrency 32 measures the Tollhouse process's CPU time per request for:

  miss         unique requests (every one goes upstream and is stored)
  hit          one request repeated (every one is answered from the cache)
  hit-stream   the same, asked with ``stream: true`` (replayed as SSE)
  bypass       unique requests with ``x-tollhouse-cache: off`` (the cache skipped entirely)

The target: a hit costs at most half the CPU of a miss. See bench/CACHE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_bench import (
    CONCURRENCY,
    MODEL,
    Outcome,
    Server,
    Target,
    machine,
    run_async,
    send,
    start_tollhouse,
    start_upstream,
)

CACHE_ON = "\n[cache]\nenabled = true\nmax_entries = 100000\n"


def body(text: str, stream: bool = False) -> bytes:
    return json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
    ).encode()


async def phase(
    session: aiohttp.ClientSession, target: Target, bodies: list[bytes], stream: bool
) -> tuple[Outcome, float, float]:
    """Send ``bodies`` at concurrency 32; returns the outcome, wall seconds and server CPU seconds."""
    outcome = Outcome()
    pending = iter(bodies)

    async def worker() -> None:
        for item in pending:
            await send(session, target, item, stream, outcome)

    cpu0, started = target.server.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return outcome, time.perf_counter() - started, target.server.cpu_seconds() - cpu0


async def measure(target: Target, requests: int) -> dict[str, Any]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY),
        timeout=aiohttp.ClientTimeout(total=120),
        skip_auto_headers=("User-Agent",),
    )
    bypass = Target(target.name, target.url, {**target.headers, "x-tollhouse-cache": "off"}, target.server)
    repeated = body("Say hello, from the cache.")
    streamed = body("Say hello, from the cache.", stream=True)
    plan: list[tuple[str, Target, list[bytes], bool]] = [
        ("warm-up", target, [body(f"warm {i}") for i in range(200)] + [repeated, streamed], False),
        ("miss", target, [body(f"unique request {i}") for i in range(requests)], False),
        ("hit", target, [repeated] * requests, False),
        ("hit-stream", target, [streamed] * requests, True),
        ("bypass", bypass, [body(f"bypassed request {i}") for i in range(requests)], False),
    ]
    out: dict[str, Any] = {}
    try:
        for name, where, bodies, stream in plan:
            outcome, wall, cpu = await phase(session, where, bodies, stream)
            if outcome.failures:
                raise RuntimeError(f"{name}: {outcome.failures} failures, first: {outcome.first_failure}")
            lat = sorted(outcome.latencies)
            out[name] = {
                "requests": len(bodies),
                "rps": round(len(bodies) / wall, 1),
                "server_cpu_ms_per_req": round(cpu / len(bodies) * 1000, 3),
                "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
            }
    finally:
        await session.close()
    out.pop("warm-up")
    out["hit_over_miss_cpu"] = round(
        out["hit"]["server_cpu_ms_per_req"] / out["miss"]["server_cpu_ms_per_req"], 3
    )
    out["target_met"] = out["hit_over_miss_cpu"] <= 0.5
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase (default 2000)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cache-e2e-") as tmp, ExitStack() as running:
        workdir = Path(tmp)
        _upstream, upstream_url = start_upstream(workdir, running)
        server, url, _db = start_tollhouse(workdir, upstream_url, running, CACHE_ON)
        assert isinstance(server, Server)
        target = Target(
            "tollhouse", url + "/v1/chat/completions", {"content-type": "application/json"}, server
        )
        results = run_async(measure(target, args.requests))  # type: ignore[arg-type]
    report = {"machine": machine(), "concurrency": CONCURRENCY, **results}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
