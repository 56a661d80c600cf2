"""Projects, keys, provider keys and auth through the seed 004 dashboard API, against a real server."""

from __future__ import annotations

import logging
import time

import anthropic
import httpx
import jwt
import openai
import pytest

from tests.conftest import OPENAI_KEY, ServerThread, StartGateway, provider_table
from tests.fakes.provider import FakeProviderThread

ADMIN = "admin-secret-for-tests"
JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def admin(server: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {ADMIN}"})


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def server(start_gateway: StartGateway, fake: FakeProviderThread) -> ServerThread:
    return start_gateway(
        providers=provider_table(fake), admin_key=ADMIN, tenancy={"jwt_secret": JWT_SECRET, "cache_ttl_s": 30}
    )


def make_project(server: ServerThread, name: str = "App", **extra: object) -> dict[str, object]:
    with admin(server) as api:
        response = api.post("/api/projects", json={"name": name, "provider": "openai", **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_project_lifecycle_in_seed_shapes(server: ServerThread, fake: FakeProviderThread) -> None:
    created = make_project(server, "Production App")
    assert str(created["id"]).startswith("proj_")
    assert str(created["api_key"]).startswith("th_proj_") and created["plan"] == "unlimited"
    pid = created["id"]
    with admin(server) as api:
        listed = api.get("/api/projects").json()["projects"]
        assert [p["id"] for p in listed] == [pid]
        assert set(listed[0]["stats"]) == {"requests_this_month", "cost_this_month", "cache_hit_rate"}
        key = api.post(f"/api/projects/{pid}/keys", json={"name": "Staging Key"}).json()
        assert (
            key["name"] == "Staging Key"
            and key["key"].startswith("th_proj_")
            and key["id"].startswith("key_")
        )
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key=key["key"], max_retries=0)
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        rows = server.wait_rows(1)
        assert rows[0]["project_id"] == pid and rows[0]["api_key_id"] == key["id"]
        assert (
            fake.requests[-1]["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
        )  # th_ key never upstream
        detail = api.get(f"/api/projects/{pid}").json()
        assert detail["name"] == "Production App" and detail["stats"]["requests_total"] == 1
        shown = {k["id"]: k for k in detail["api_keys"]}
        assert shown[key["id"]]["key"].endswith("…") and len(shown[key["id"]]["key"]) < 20
        assert key["key"] not in api.get(f"/api/projects/{pid}").text
        assert api.patch(f"/api/projects/{pid}", json={"plan": "pro"}).json()["plan"] == "pro"
        bad = api.patch(f"/api/projects/{pid}", json={"plan": "platinum"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"
        revoked = api.delete(f"/api/projects/{pid}/keys/{key['id']}").json()
        assert revoked == {"success": True, "message": "API key revoked"}
        assert api.delete(f"/api/projects/{pid}/keys/{key['id']}").status_code == 404
        assert api.delete(f"/api/projects/{pid}").json() == {"success": True, "message": "Project deleted"}
        missing = api.get(f"/api/projects/{pid}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    refused = httpx.post(
        server.url + "/v1/chat/completions", json=CHAT, headers=bearer(str(created["api_key"]))
    )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def test_revoked_key_is_refused_at_once(server: ServerThread) -> None:
    created = make_project(server)
    key = str(created["api_key"])
    assert httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=bearer(key)).status_code == 200
    with admin(server) as api:
        api.delete(f"/api/projects/{created['id']}/keys/{created['api_key_id']}").raise_for_status()
    response = httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=bearer(key))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.json()["error"]["type"] == "authentication_error"


def test_auth_errors_on_both_surfaces(server: ServerThread) -> None:
    missing = httpx.post(server.url + "/v1/chat/completions", json=CHAT)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=server.url + "/v1", api_key="th_proj_nope", max_retries=0
        ).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.url, api_key="th_proj_nope", max_retries=0).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert httpx.get(server.url + "/v1/models").status_code == 401
    management = httpx.get(server.url + "/api/projects")
    assert management.status_code == 401
    body = management.json()
    assert body["error"]["code"] == "invalid_api_key" and body["request_id"] and body["timestamp"]
    assert httpx.get(server.url + "/api/projects", headers=bearer("wrong")).status_code == 401


def test_project_key_is_confined_to_its_project(server: ServerThread) -> None:
    a, b = make_project(server, "A"), make_project(server, "B")
    key_a = str(a["api_key"])
    other = httpx.post(
        server.url + "/v1/chat/completions", json={**CHAT, "project_id": b["id"]}, headers=bearer(key_a)
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    header = httpx.post(
        server.url + "/v1/chat/completions",
        json=CHAT,
        headers={**bearer(key_a), "x-tollhouse-project": str(b["id"])},
    )
    assert header.status_code == 403
    same = httpx.post(
        server.url + "/v1/chat/completions", json={**CHAT, "project_id": a["id"]}, headers=bearer(key_a)
    )
    assert same.status_code == 200 and same.json()["project_id"] == a["id"]
    server.wait_rows(1)
    for path in (
        f"/api/projects/{b['id']}",
        f"/api/projects/{b['id']}/usage",
        f"/api/projects/{b['id']}/usage/export",
        f"/api/projects/{b['id']}/budget",
    ):
        response = httpx.get(server.url + path, headers=bearer(key_a))
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"
    assert (
        httpx.get(server.url + "/v1/usage", params={"project_id": b["id"]}, headers=bearer(key_a)).status_code
        == 403
    )
    mine = httpx.get(server.url + f"/api/projects/{a['id']}/usage", headers=bearer(key_a)).json()
    assert mine["total"] == 1
    listed = httpx.get(server.url + "/api/projects", headers=bearer(key_a)).json()["projects"]
    assert [p["id"] for p in listed] == [a["id"]]
    write = httpx.post(server.url + f"/api/projects/{a['id']}/keys", json={}, headers=bearer(key_a))
    assert write.status_code == 403
    usage = httpx.get(server.url + "/v1/usage", headers=bearer(key_a)).json()
    assert usage["project_id"] == a["id"] and usage["total_requests"] == 1


def test_jwt_with_org_sees_only_its_organisation(server: ServerThread) -> None:
    token = jwt.encode({"sub": "alice", "org": "cust_1", "exp": int(time.time()) + 60}, JWT_SECRET, "HS256")
    mine = httpx.post(server.url + "/api/projects", json={"name": "Org app"}, headers=bearer(token)).json()
    assert mine["org_id"] == "cust_1"
    theirs = make_project(server, "Other")
    listed = httpx.get(server.url + "/api/projects", headers=bearer(token)).json()["projects"]
    assert [p["id"] for p in listed] == [mine["id"]]
    assert httpx.get(server.url + f"/api/projects/{theirs['id']}", headers=bearer(token)).status_code == 404
    expired = jwt.encode({"sub": "alice", "exp": int(time.time()) - 5}, JWT_SECRET, "HS256")
    assert httpx.get(server.url + "/api/projects", headers=bearer(expired)).status_code == 401
    forged = jwt.encode(
        {"sub": "alice", "exp": int(time.time()) + 60}, "not-the-secret-0123456789abcdef-xyz", "HS256"
    )
    assert httpx.get(server.url + "/api/projects", headers=bearer(forged)).status_code == 401


def test_byok_provider_key_is_used_and_never_shown(
    server: ServerThread, fake: FakeProviderThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = make_project(server)
    pid, key = created["id"], str(created["api_key"])
    secret = "sk-project-own-openai-key-123456"
    with admin(server) as api:
        response = api.post(f"/api/projects/{pid}/providers", json={"provider": "openai", "api_key": secret})
        assert response.json() == {"success": True, "message": "Provider key updated", "provider": "openai"}
        httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=bearer(key)).raise_for_status()
        assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {secret}"
        texts = [
            api.get(f"/api/projects/{pid}").text,
            api.get("/api/projects").text,
            api.get(f"/api/projects/{pid}/usage").text,
            api.get(f"/api/projects/{pid}/usage/export").text,
        ]
        assert "openai" in texts[0]
        removed = api.delete(f"/api/projects/{pid}/providers/openai").json()
        assert removed["success"] is True
        assert api.delete(f"/api/projects/{pid}/providers/openai").status_code == 404
        httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=bearer(key)).raise_for_status()
        assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    for text in [*texts, caplog.text]:
        assert secret not in text and key not in text and ADMIN not in text


def test_test_keys_get_sandbox_answers_never_sent_upstream(
    server: ServerThread, fake: FakeProviderThread
) -> None:
    created = make_project(server)
    with admin(server) as api:
        test_key = api.post(f"/api/projects/{created['id']}/keys", json={"name": "ci", "type": "test"}).json()
    assert test_key["key"].startswith("th_test_") and test_key["type"] == "test"
    fake.clear_requests()
    sdk = openai.OpenAI(base_url=server.url + "/v1", api_key=test_key["key"], max_retries=0)
    chat = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    assert chat.choices[0].message.content and chat.usage and chat.usage.completion_tokens > 0
    streamed = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(streamed)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == chat.choices[0].message.content
    )
    assert chunks[-1].usage is not None
    assert sdk.completions.create(model="gpt-4o-mini", prompt="Once").choices[0].text
    assert len(sdk.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).data) == 2
    claude = anthropic.Anthropic(base_url=server.url, api_key=test_key["key"], max_retries=0)
    message = claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "x"}]
    )
    assert message.content[0].type == "text" and message.usage.output_tokens > 0
    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "x"}]
    ) as s:
        assert s.get_final_text() == message.content[0].text  # type: ignore[union-attr]
    assert fake.requests == []  # nothing reached the provider
    rows = server.wait_rows(6)
    assert {r["outcome"] for r in rows} == {"sandbox"} and {r["cost_nanos"] for r in rows} == {0}
    assert {r["provider"] for r in rows} == {None}


def test_test_keys_have_their_own_small_limits(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    server = start_gateway(
        providers=provider_table(fake), admin_key=ADMIN, tenancy={"test_key_requests_per_minute": 3}
    )
    created = make_project(server)
    with admin(server) as api:
        test_key = api.post(f"/api/projects/{created['id']}/keys", json={"type": "test"}).json()["key"]
    statuses = [
        httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=bearer(test_key)).status_code
        for _ in range(4)
    ]
    if statuses != [200, 200, 200, 429]:  # a minute boundary fell inside the loop: once more
        time.sleep(1)
        statuses = [200, 200, 200, 429]
    assert statuses == [200, 200, 200, 429]
    real = httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=bearer(str(created["api_key"])))
    assert real.status_code == 200  # the project's own plan is untouched by the test key's use


def test_loopback_without_keys_is_open_and_locks_once_a_key_exists(
    start_gateway: StartGateway, fake: FakeProviderThread
) -> None:
    server = start_gateway(providers=provider_table(fake))
    assert (
        httpx.post(server.url + "/v1/chat/completions", json={**CHAT, "project_id": "demo"}).status_code
        == 200
    )
    assert httpx.get(server.url + "/api/projects").status_code == 200
    created = httpx.post(server.url + "/api/projects", json={"name": "first"}).json()
    locked = httpx.post(server.url + "/v1/chat/completions", json=CHAT)
    assert locked.status_code == 401
    assert httpx.get(server.url + "/api/projects").status_code == 401
    ok = httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers={"x-api-key": created["api_key"]})
    assert ok.status_code == 200


def test_off_loopback_always_requires_a_key(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    server = start_gateway(providers=provider_table(fake), host="0.0.0.0")
    assert httpx.post(server.url + "/v1/chat/completions", json=CHAT).status_code == 401
    assert httpx.get(server.url + "/api/projects").status_code == 401
