"""Budgets and plan limits in embedded mode (one process, SQLite): reserve, settle, release, refuse."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import ServerThread, StartGateway, provider_table
from tests.fakes.provider import FakeProviderThread

ADMIN = "admin-secret-for-tests"
# 40 characters → 10 prompt tokens, estimated and counted alike; the fake's default reply is 5 words,
# so with max_tokens=5 a call reserves exactly what it costs: 10 x $0.15/M + 5 x $0.60/M = 4,500 nano-dollars.
PROMPT = "x" * 40
CALL = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 5}
PER_CALL_NANOS = 10 * 150 + 5 * 600


def wait_for_fresh_minute() -> None:
    """Rate-limit windows are calendar minutes: keep a test's burst inside one."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def project(server: ServerThread, **extra: object) -> tuple[str, str]:
    response = httpx.post(server.url + "/api/projects", json={"name": "p", **extra}, headers=auth(ADMIN))
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["api_key"]


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def set_budget(
    server: ServerThread, pid: str, body: dict[str, object], key_id: str | None = None
) -> dict[str, object]:
    path = f"/api/projects/{pid}/budget" if key_id is None else f"/api/projects/{pid}/keys/{key_id}/budget"
    response = httpx.put(server.url + path, json=body, headers=auth(ADMIN))
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def burst(url: str, key: str, count: int, body: dict[str, object]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(url + "/v1/chat/completions", json=body, headers=auth(key))
                    for _ in range(count)
                )
            )
        )


@pytest.fixture
def server(start_gateway: StartGateway, fake: FakeProviderThread) -> ServerThread:
    return start_gateway(providers=provider_table(fake), admin_key=ADMIN)


def test_200_concurrent_calls_are_held_to_a_budget_that_fits_50(
    server: ServerThread, fake: FakeProviderThread
) -> None:
    pid, key = project(server)
    limit_usd = 50 * PER_CALL_NANOS / 1e9
    set_budget(server, pid, {"period": "day", "limit_usd": limit_usd})
    fake.provider.delay_ms = 50  # every admitted call is still in flight when the others arrive
    try:
        responses = asyncio.run(burst(server.url, key, 200, CALL))
    finally:
        fake.provider.delay_ms = 0
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) == 50 and len(refused) == 150
    error = refused[0].json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert error["details"]["period"] == "day" and error["details"]["limit_usd"] == pytest.approx(limit_usd)
    assert int(refused[0].headers["retry-after"]) > 0
    rows = server.wait_rows(200)
    spent = sum(r["cost_nanos"] for r in rows)
    assert spent == 50 * PER_CALL_NANOS  # never past the limit
    budget = httpx.get(server.url + f"/api/projects/{pid}/budget", headers=auth(ADMIN)).json()
    assert budget["spent_usd"] == pytest.approx(limit_usd) and budget["remaining_usd"] == 0
    usage = httpx.get(server.url + "/v1/usage", params={"period": "day"}, headers=auth(key)).json()
    assert (
        usage["limit"] == pytest.approx(limit_usd)
        and usage["remaining"] == 0
        and usage["limit_unit"] == "usd"
    )


def test_reservation_is_settled_to_the_real_cost_and_released_on_error(
    server: ServerThread, fake: FakeProviderThread
) -> None:
    pid, key = project(server)
    set_budget(server, pid, {"period": "month", "limit_tokens": 1000})
    big = {**CALL, "max_tokens": 900}  # reserves 910 tokens; really uses 15
    assert httpx.post(server.url + "/v1/chat/completions", json=big, headers=auth(key)).status_code == 200
    budget = httpx.get(server.url + f"/api/projects/{pid}/budget", headers=auth(ADMIN)).json()
    assert budget["spent_tokens"] == 15 and budget["remaining_tokens"] == 985
    fake.script({"status": 500}, {"status": 500})
    failed = httpx.post(server.url + "/v1/chat/completions", json=big, headers=auth(key))
    assert failed.status_code == 502
    budget = httpx.get(server.url + f"/api/projects/{pid}/budget", headers=auth(ADMIN)).json()
    assert budget["spent_tokens"] == 15  # the failed call's reservation was released
    too_big = httpx.post(
        server.url + "/v1/chat/completions", json={**CALL, "max_tokens": 980}, headers=auth(key)
    )
    assert too_big.status_code == 429 and too_big.json()["error"]["code"] == "budget_exceeded"
    usage = httpx.get(server.url + "/v1/usage", headers=auth(key)).json()
    assert (usage["limit"], usage["remaining"], usage["limit_unit"]) == (1000, 985, "tokens")


def test_streaming_and_anthropic_calls_are_metered(server: ServerThread) -> None:
    pid, key = project(server)
    set_budget(server, pid, {"period": "week", "limit_tokens": 100_000})
    body = {**CALL, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=auth(key)) as response:
        assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers
        text = response.read().decode()
    assert "[DONE]" in text
    messages = {
        "model": "claude-haiku-4-5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    assert (
        httpx.post(server.url + "/v1/messages", json=messages, headers={"x-api-key": key}).status_code == 200
    )
    server.wait_rows(2)
    budget = httpx.get(server.url + f"/api/projects/{pid}/budget", headers=auth(ADMIN)).json()
    assert budget["spent_tokens"] == 30 and budget["period"] == "week"


def test_key_budget_applies_to_that_key_only(server: ServerThread) -> None:
    pid, key = project(server)
    second = httpx.post(
        server.url + f"/api/projects/{pid}/keys", json={"name": "b"}, headers=auth(ADMIN)
    ).json()
    set_budget(server, pid, {"period": "day", "limit_tokens": 20}, key_id=second["id"])
    assert (
        httpx.post(server.url + "/v1/chat/completions", json=CALL, headers=auth(second["key"])).status_code
        == 200
    )
    refused = httpx.post(server.url + "/v1/chat/completions", json=CALL, headers=auth(second["key"]))
    assert refused.status_code == 429 and refused.json()["error"]["details"]["scope"] == "key"
    assert httpx.post(server.url + "/v1/chat/completions", json=CALL, headers=auth(key)).status_code == 200
    shown = httpx.get(
        server.url + f"/api/projects/{pid}/keys/{second['id']}/budget", headers=auth(ADMIN)
    ).json()
    assert shown["spent_tokens"] == 15 and shown["limit_tokens"] == 20


def test_budget_validation(server: ServerThread) -> None:
    pid, _ = project(server)
    for body in ({"period": "year", "limit_usd": 1}, {"period": "day"}, {"period": "day", "limit_usd": -1}):
        response = httpx.put(server.url + f"/api/projects/{pid}/budget", json=body, headers=auth(ADMIN))
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] in ("invalid_request", "invalid_parameter")
    empty = httpx.get(server.url + f"/api/projects/{pid}/budget", headers=auth(ADMIN)).json()
    assert empty["limit_usd"] is None and empty["period"] is None


def test_spend_before_a_restart_counts_against_the_budget(
    start_gateway: StartGateway, fake: FakeProviderThread, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "shared"
    first = start_gateway(providers=provider_table(fake), admin_key=ADMIN, data_dir=data)
    pid, key = project(first)
    for _ in range(3):
        httpx.post(first.url + "/v1/chat/completions", json=CALL, headers=auth(key)).raise_for_status()
    first.stop()
    second = start_gateway(providers=provider_table(fake), admin_key=ADMIN, data_dir=data)
    budget = set_budget(second, pid, {"period": "month", "limit_usd": 4 * PER_CALL_NANOS / 1e9})
    assert budget["spent_usd"] == pytest.approx(3 * PER_CALL_NANOS / 1e9)
    assert httpx.post(second.url + "/v1/chat/completions", json=CALL, headers=auth(key)).status_code == 200
    assert httpx.post(second.url + "/v1/chat/completions", json=CALL, headers=auth(key)).status_code == 429


def test_plan_rate_limit_headers_and_refusal(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    server = start_gateway(
        providers=provider_table(fake),
        admin_key=ADMIN,
        tenancy={"plans": {"tiny": {"requests_per_minute": 3, "requests_per_month": 1000}}},
    )
    pid, key = project(server, plan="tiny")
    wait_for_fresh_minute()
    responses = [
        httpx.post(server.url + "/v1/chat/completions", json=CALL, headers=auth(key)) for _ in range(4)
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in responses)
    reset = int(responses[0].headers["x-ratelimit-reset"])
    assert reset % 60 == 0 and 0 < reset - time.time() <= 60
    error = responses[3].json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["details"] == {
        "plan": "tiny",
        "limit": 3,
        "reset_at": datetime.fromtimestamp(reset, UTC).isoformat().replace("+00:00", "Z"),
    }
    assert 1 <= int(responses[3].headers["retry-after"]) <= 60
    httpx.patch(
        server.url + f"/api/projects/{pid}", json={"plan": "pro"}, headers=auth(ADMIN)
    ).raise_for_status()
    upgraded = httpx.post(server.url + "/v1/chat/completions", json=CALL, headers=auth(key))
    assert upgraded.status_code == 200 and upgraded.headers["x-ratelimit-limit"] == "600"


def test_monthly_quota_is_quota_exceeded(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    server = start_gateway(
        providers=provider_table(fake),
        admin_key=ADMIN,
        tenancy={"plans": {"trial": {"requests_per_month": 2}}},
    )
    _, key = project(server, plan="trial")
    codes = [
        httpx.post(
            server.url + "/v1/messages",
            headers={"x-api-key": key},
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
            },
        )
        for _ in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    body = codes[2].json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "quota_exceeded" and body["error"]["details"]["limit"] == 2
    assert int(codes[2].headers["retry-after"]) > 0


def test_usage_logs_filters_and_csv_export(server: ServerThread) -> None:
    pid, key = project(server)
    for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o"):
        httpx.post(
            server.url + "/v1/chat/completions", json={**CALL, "model": model}, headers=auth(key)
        ).raise_for_status()
    server.wait_rows(3)
    api = f"{server.url}/api/projects/{pid}/usage"
    page = httpx.get(api, params={"limit": 2}, headers=auth(ADMIN)).json()
    assert page["total"] == 3 and len(page["logs"]) == 2
    assert set(page["logs"][0]) >= {
        "id",
        "model",
        "tokens_used",
        "cost_usd",
        "cached",
        "latency_ms",
        "created_at",
    }
    assert page["summary"]["total_requests"] == 3 and page["summary"]["total_tokens"] == 45
    only = httpx.get(api, params={"model": "gpt-4o"}, headers=auth(ADMIN)).json()
    assert only["total"] == 1 and only["logs"][0]["model"] == "gpt-4o"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert httpx.get(api, params={"from": future, "to": future + "1"}, headers=auth(ADMIN)).status_code == 400
    assert httpx.get(api, params={"limit": 1001}, headers=auth(ADMIN)).status_code == 400
    export = httpx.get(api + "/export", params={"model": "gpt-4o-mini"}, headers=auth(ADMIN))
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().split("\n")
    assert lines[0].startswith("date,model,tokens_used,cost_usd,cached,latency_ms")
    assert len(lines) == 3 and lines[1].split(",")[1] == "gpt-4o-mini" and lines[1].split(",")[4] == "false"
