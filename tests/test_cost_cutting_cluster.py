"""Cluster mode: two Tollhouse apps sharing Redis see each other's events and cached answers.

Skipped locally without ``scripts/services start``; fails in CI (``CI=true``) without Redis.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.conftest import StartGateway, provider_table
from tests.db_urls import redis_url
from tests.fakes.provider import FakeProviderThread
from tests.test_cost_cutting_live import SSEReader

CHAT = "/v1/chat/completions"


def test_every_replica_sees_every_event_and_shares_the_cache(
    start_gateway: StartGateway, fake: FakeProviderThread, tmp_path: Path
) -> None:
    url = redis_url()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    shared = {
        "providers": provider_table(fake),
        "redis_url": url,
        "cache": {"enabled": True, "redis_prefix": f"{prefix}:cache"},
        "tenancy": {"redis_prefix": f"{prefix}:"},
        "events": {"redis_channel": f"{prefix}:events", "keepalive_s": 0.5},
    }
    one = start_gateway(**shared)
    two = start_gateway(**shared)
    reader = SSEReader(two.url + "/api/stream")
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"cluster {prefix}"}]}
        assert httpx.post(one.url + CHAT, json=body).headers["x-tollhouse-cached"] == "false"
        seen = len(fake.requests)
        hit = httpx.post(two.url + CHAT, json=body)
        assert hit.headers["x-tollhouse-cached"] == "true" and len(fake.requests) == seen
        events = reader.events({"cache_miss", "cache_hit"})
        assert events["cache_miss"]["request_id"] != events["cache_hit"]["request_id"]
        stats = httpx.get(one.url + "/api/cache/stats").json()
        assert stats["backend"] == "RedisStore" and stats["cache_hits"] >= 1
        httpx.delete(one.url + "/api/cache")
    finally:
        reader.close()
