"""Cluster mode against real servers: two Tollhouse processes sharing PostgreSQL and Redis.

Skipped locally without ``scripts/services start``; in CI (``CI=true``) a missing server fails.
Each test gets its own PostgreSQL database and its own Redis key prefix.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.db_urls import postgres_url, redis_url
from tests.fakes.provider import FakeProviderThread
from tollhouse.db.tables import ledger

pytestmark = pytest.mark.cluster

ADMIN = "cluster-admin-key-for-tests"
PROVIDER_SECRET = "sk-cluster-provider-secret-000"
CALL = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 5}
PER_CALL_NANOS = 10 * 150 + 5 * 600
CACHE_TTL_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


class Node:
    """One `tollhouse serve` process."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLHOUSE_")}
        env["TOLLHOUSE_PORT"] = str(self.port)
        exe = Path(sys.executable).with_name("tollhouse")
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [str(exe), "serve", "--config", str(config)], stdout=self._out, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tollhouse did not start:\n{log.read_text()}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


class Cluster:
    def __init__(self, nodes: list[Node], database_url: str) -> None:
        self.a, self.b = nodes
        self.nodes = nodes
        self.database_url = database_url

    def ledger_rows(self, **where: Any) -> tuple[int, int]:
        async def read() -> tuple[int, int]:
            engine = create_async_engine(self.database_url)
            try:
                query = select(func.count(), func.coalesce(func.sum(ledger.c.cost_nanos), 0))
                for column, value in where.items():
                    query = query.where(ledger.c[column] == value)
                async with engine.connect() as conn:
                    row = (await conn.execute(query)).one()
                return int(row[0]), int(row[1])
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def wait_ledger(self, count: int, **where: Any) -> tuple[int, int]:
        deadline = time.monotonic() + 15
        while True:
            found = self.ledger_rows(**where)
            if found[0] >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def project(self, **extra: Any) -> tuple[str, str]:
        response = httpx.post(self.a.url + "/api/projects", json={"name": "c", **extra}, headers=auth(ADMIN))
        assert response.status_code == 201, response.text
        return response.json()["id"], response.json()["api_key"]


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def cluster(tmp_path: Path, fake: FakeProviderThread) -> Iterator[Cluster]:
    base = postgres_url()
    redis = redis_url()
    name = f"th_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    database_url = base.rsplit("/", 1)[0] + "/" + name
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        f"""
host = "127.0.0.1"
admin_key = "{ADMIN}"
database_url = "{database_url}"
redis_url = "{redis}"
data_dir = "{tmp_path / "data"}"
log_level = "debug"
[ledger]
flush_interval_ms = 10
[claude_code]
enabled = false
[tenancy]
redis_prefix = "{name}:"
cache_ttl_s = {CACHE_TTL_S}
encryption_keys = ["{Fernet.generate_key().decode()}"]
[tenancy.plans.team]
requests_per_minute = 20
[[providers]]
name = "fake-openai"
protocol = "openai"
base_url = "{fake.openai_base_url}"
api_key = "{PROVIDER_SECRET}"
models = ["gpt-*"]
max_retries = 0
"""
    )
    nodes: list[Node] = []
    try:
        nodes.append(Node(config, tmp_path / "a.log"))  # migrates first; the second finds it done
        nodes.append(Node(config, tmp_path / "b.log"))
        yield Cluster(nodes, database_url)
    finally:
        for node in nodes:
            node.stop()
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _spread(nodes: list[Node], key: str, count: int) -> list[httpx.Response]:
    """``count`` distinct calls (same size, so same cost), alternating between the nodes.

    Distinct on purpose: identical calls would be answered by the shared response cache after
    the first one, and a cache hit is free and reserves no budget.
    """
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        calls = [
            client.post(
                nodes[i % len(nodes)].url + "/v1/chat/completions",
                json={**CALL, "messages": [{"role": "user", "content": f"{i:040d}"}]},
                headers=auth(key),
            )
            for i in range(count)
        ]
        return list(await asyncio.gather(*calls))


def test_budget_holds_across_two_processes(cluster: Cluster, fake: FakeProviderThread) -> None:
    pid, key = cluster.project()
    limit_usd = 50 * PER_CALL_NANOS / 1e9
    response = httpx.put(
        cluster.a.url + f"/api/projects/{pid}/budget",
        json={"period": "day", "limit_usd": limit_usd},
        headers=auth(ADMIN),
    )
    assert response.status_code == 200, response.text
    fake.provider.delay_ms = 50
    try:
        responses = asyncio.run(_spread(cluster.nodes, key, 200))
    finally:
        fake.provider.delay_ms = 0
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50 and statuses.count(429) == 150
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 429} == {"budget_exceeded"}
    refused_by = {i % 2 for i, r in enumerate(responses) if r.status_code == 429}
    assert refused_by == {0, 1}  # both processes enforced the one shared budget
    count, spent = cluster.wait_ledger(200, project_id=pid)
    assert count == 200 and spent == 50 * PER_CALL_NANOS
    time.sleep(0.2)  # settles are sent after the responses
    for node in cluster.nodes:
        budget = httpx.get(node.url + f"/api/projects/{pid}/budget", headers=auth(ADMIN)).json()
        assert budget["remaining_usd"] == 0 and budget["spent_usd"] == pytest.approx(limit_usd)


def test_rate_limit_of_n_per_minute_lets_n_through_across_processes(cluster: Cluster) -> None:
    _pid, key = cluster.project(plan="team")
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    responses = asyncio.run(_spread(cluster.nodes, key, 30))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 20 and statuses.count(429) == 10
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded" and "retry-after" in refused.headers
    assert refused.headers["x-ratelimit-limit"] == "20" and refused.headers["x-ratelimit-remaining"] == "0"


def test_revocation_reaches_the_other_process_within_the_bound(cluster: Cluster) -> None:
    pid, key = cluster.project()
    key_id = httpx.get(cluster.a.url + f"/api/projects/{pid}", headers=auth(ADMIN)).json()["api_keys"][0][
        "id"
    ]
    assert (
        httpx.post(cluster.b.url + "/v1/chat/completions", json=CALL, headers=auth(key)).status_code == 200
    )  # cached
    httpx.delete(cluster.a.url + f"/api/projects/{pid}/keys/{key_id}", headers=auth(ADMIN)).raise_for_status()
    assert httpx.post(cluster.a.url + "/v1/chat/completions", json=CALL, headers=auth(key)).status_code == 401
    started = time.monotonic()
    while httpx.post(cluster.b.url + "/v1/chat/completions", json=CALL, headers=auth(key)).status_code != 401:
        assert time.monotonic() - started < CACHE_TTL_S + 1, "revocation not seen within the documented bound"
        time.sleep(0.02)


def test_isolation_byok_and_no_secret_in_any_log(cluster: Cluster, fake: FakeProviderThread) -> None:
    a_id, a_key = cluster.project()
    b_id, b_key = cluster.project()
    own = "sk-project-b-own-key-999"
    httpx.post(
        cluster.a.url + f"/api/projects/{b_id}/providers",
        json={"provider": "openai", "api_key": own},
        headers=auth(ADMIN),
    ).raise_for_status()
    assert (
        httpx.post(cluster.b.url + "/v1/chat/completions", json=CALL, headers=auth(b_key)).status_code == 200
    )
    assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {own}"
    assert (
        httpx.post(cluster.b.url + "/v1/chat/completions", json=CALL, headers=auth(a_key)).status_code == 200
    )
    assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {PROVIDER_SECRET}"
    cluster.wait_ledger(2)
    for node in cluster.nodes:
        seen = httpx.get(node.url + f"/api/projects/{a_id}/usage", headers=auth(a_key)).json()
        assert seen["total"] == 1
        assert httpx.get(node.url + f"/api/projects/{b_id}/usage", headers=auth(a_key)).status_code == 403
        detail = httpx.get(node.url + f"/api/projects/{b_id}", headers=auth(ADMIN)).text
        assert own not in detail and b_key not in detail
    for node in cluster.nodes:
        node.stop()
        log = node.log.read_text()
        assert log  # debug logging was on
        for secret in (own, a_key, b_key, PROVIDER_SECRET, ADMIN):
            assert secret not in log
