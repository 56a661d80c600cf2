"""The live and read-side surfaces: /api/stream, /terminal, /metrics, analytics, /v1/batch."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.conftest import ServerThread, StartGateway, provider_table
from tests.fakes.provider import FakeProviderThread

CHAT = "/v1/chat/completions"
LIVE = {"keepalive_s": 0.2, "analytics_interval_s": 0.2}
OVERRIDES = {"enabled": True, "rules": [["gpt-4o", "gpt-4o-mini"]]}


def ask(text: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
def live(start_gateway: StartGateway, fake: FakeProviderThread) -> ServerThread:
    return start_gateway(
        providers=provider_table(fake), cache={"enabled": True}, overrides=OVERRIDES, events=LIVE
    )


class SSEReader:
    """Reads /api/stream in a thread: every event and comment line lands in a queue."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}), daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=5)) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            self.status = response.status_code
            self._opened.set()
            try:
                for line in response.iter_lines():
                    self.lines.put(line)
                    if self._stop.is_set():
                        return
            except httpx.HTTPError:
                return

    def events(self, wanted: set[str], timeout: float = 10) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        name = None
        deadline = time.monotonic() + timeout
        while not wanted <= set(found):
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                found.setdefault(name, orjson.loads(line.split(":", 1)[1]))
        return found

    def comment(self, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line.startswith(":"):
                return line

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def reader(live: ServerThread) -> Iterator[SSEReader]:
    sse = SSEReader(live.url + "/api/stream")
    yield sse
    sse.close()


def test_events_arrive_on_the_stream(live: ServerThread, reader: SSEReader, fake: FakeProviderThread) -> None:
    assert reader.status == 200
    httpx.post(live.url + CHAT, json=ask("hi", "gpt-4o"))  # override + miss
    httpx.post(live.url + CHAT, json=ask("hi", "gpt-4o"))  # hit
    fake.script({"status": 500}, {"status": 500})
    httpx.post(live.url + CHAT, json=ask("boom"))  # error after the retry
    events = reader.events({"model_override", "cache_miss", "cache_hit", "error", "analytics"})
    assert events["model_override"]["model"] == "gpt-4o"
    assert events["model_override"]["override_to"] == "gpt-4o-mini"
    assert len(events["cache_hit"]["cache_key"]) == 64 and events["cache_hit"]["type"] == "exact"
    assert events["cache_miss"]["project_id"] == "default"
    assert events["error"]["code"] == "provider_error"
    assert events["analytics"]["type"] == "stats" and "last24h" in events["analytics"]["payload"]
    assert reader.comment().startswith(": ping")


def test_the_terminal_answers_commands_and_pushes_events(live: ServerThread) -> None:
    ws_url = live.url.replace("http://", "ws://") + "/terminal"
    with connect(ws_url, open_timeout=5) as ws:

        def reply(command: str) -> dict[str, Any]:
            ws.send(orjson.dumps({"type": "command", "command": command}).decode())
            while True:
                message = orjson.loads(ws.recv(timeout=5))
                if message["type"] != "event":
                    return message  # type: ignore[no-any-return]

        assert orjson.loads(ws.recv(timeout=5))["type"] == "output"
        assert "cache stats" in reply("help")["content"]
        httpx.post(live.url + CHAT, json=ask("t", "gpt-4o"))
        httpx.post(live.url + CHAT, json=ask("t", "gpt-4o"))
        live.wait_rows(2)
        assert "Cache hits: 1\nCache misses: 1" in reply("cache stats")["content"]
        assert "gpt-4o → gpt-4o-mini: 2" in reply("overrides")["content"]
        assert "Last 24 h: 2 calls" in reply("stats")["content"]
        assert "1 entries removed" in reply("cache clear")["content"]
        ws.send("help")  # a bare command works too (websocat)
        assert "Available commands" in orjson.loads(ws.recv(timeout=5))["content"]
        assert reply("frobnicate")["type"] == "error"
        httpx.post(live.url + CHAT, json=ask("pushed"))
        deadline = time.monotonic() + 5
        pushed = set()
        while "cache_miss" not in pushed and time.monotonic() < deadline:
            message = orjson.loads(ws.recv(timeout=5))
            if message["type"] == "event":
                pushed.add(message["event"])
        assert "cache_miss" in pushed
        assert reply("exit")["content"] == "Goodbye."


def test_metrics_parse_with_prometheus_clients_parser(live: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"usage": {"prompt_tokens": 100, "completion_tokens": 20}})
    httpx.post(live.url + CHAT, json=ask("m", "gpt-4o"))
    httpx.post(live.url + CHAT, json=ask("m", "gpt-4o"))
    httpx.post(live.url + CHAT, json={"model": "gpt-4o-mini"})  # refused: no messages
    with httpx.stream("POST", live.url + CHAT, json={**ask("s"), "stream": True}) as response:
        response.read()
    live.wait_rows(4)
    time.sleep(0.1)  # the ledger listener runs just after the batch commits
    text = httpx.get(live.url + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    route = ("route", CHAT)
    assert samples[("tollhouse_requests_total", (("outcome", "ok"), route))] == 2
    assert samples[("tollhouse_requests_total", (("outcome", "cache_hit"), route))] == 1
    assert samples[("tollhouse_tokens_total", (("kind", "input"),))] >= 100
    assert samples[("tollhouse_cost_usd_total", (route,))] > 0
    assert samples[("tollhouse_cache_hits_total", (("type", "exact"),))] == 1
    assert samples[("tollhouse_saved_usd_total", (("reason", "cache"),))] > 0
    assert samples[("tollhouse_overrides_total", ())] == 2
    assert samples[("tollhouse_refusals_total", (("code", "missing_field"),))] == 1
    assert samples[("tollhouse_overhead_seconds_count", (route,))] >= 3
    assert samples[("tollhouse_upstream_latency_seconds_count", (("provider", "fake-openai"),))] == 2
    assert samples[("tollhouse_ttft_seconds_count", (route,))] >= 2
    for family in families.values():
        for sample in family.samples:
            assert not {"project", "project_id", "model", "key"} & set(sample.labels)


def test_project_and_dashboard_stats_from_the_ledger(live: ServerThread, fake: FakeProviderThread) -> None:
    for text in ("a", "b", "a"):
        httpx.post(live.url + CHAT, json={**ask(text), "project_id": "stats-p"})
    live.wait_rows(3)
    project = httpx.get(live.url + "/api/project/stats", params={"project_id": "stats-p"}).json()
    assert project["calls"] == 3 and project["cost"] > 0 and project["tokens"] > 0
    assert project["callsTrend"] == {"value": 100.0, "period": "24h"}
    assert set(project) >= {"costTrend", "tokensTrend", "avgTime", "timeTrend"}
    assert httpx.get(live.url + "/api/project/stats").json()["calls"] == 0  # default project
    dashboard = httpx.get(live.url + "/api/dashboard/stats", params={"period": "7d"}).json()
    assert dashboard["requests_total"] == 3 and dashboard["requests_today"] == 3
    assert dashboard["cache_hit_rate"] == pytest.approx(0.3333, abs=1e-3)
    assert dashboard["cost_saved"] > 0 and dashboard["cost_this_month"] > 0
    assert dashboard["top_models"][0] == {
        "model": "gpt-4o-mini",
        "requests": 3,
        "cost": dashboard["top_models"][0]["cost"],
    }
    assert sum(day["requests"] for day in dashboard["chart_data"]) == 3
    for period in ("30d", "all"):
        assert httpx.get(live.url + "/api/dashboard/stats", params={"period": period}).status_code == 200
    bad = httpx.get(live.url + "/api/dashboard/stats", params={"period": "1y"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"


def test_a_project_key_sees_only_its_own_stats(start_gateway: StartGateway, fake: FakeProviderThread) -> None:
    gateway = start_gateway(providers=provider_table(fake), admin_key="admin-secret")
    admin = {"authorization": "Bearer admin-secret"}
    made = httpx.post(gateway.url + "/api/projects", json={"name": "A"}, headers=admin).json()
    own = {"authorization": f"Bearer {made['api_key']}"}
    httpx.post(gateway.url + CHAT, json=ask("x"), headers=own)
    httpx.post(gateway.url + CHAT, json={**ask("y"), "project_id": "elsewhere"}, headers=admin)
    gateway.wait_rows(1)
    assert httpx.get(gateway.url + "/api/project/stats", headers=own).json()["project_id"] == made["id"]
    forbidden = httpx.get(gateway.url + "/api/project/stats", params={"project_id": "elsewhere"}, headers=own)
    assert forbidden.status_code == 403
    assert httpx.get(gateway.url + "/api/dashboard/stats", headers=own).json()["requests_total"] == 1
    assert httpx.get(gateway.url + "/api/machine/stats", headers=own).status_code == 403
    assert httpx.get(gateway.url + "/metrics").status_code == 401


def test_batch_reports_each_item_and_totals(live: ServerThread, fake: FakeProviderThread) -> None:
    fake.script({"status": 400, "message": "nope"})
    response = httpx.post(
        live.url + "/v1/batch",
        json={
            "prompts": [
                {"prompt": "First task", "id": "t1"},
                {"prompt": "Second task", "id": "t2"},
                {"prompt": "Third task", "id": "t3"},
                {"id": "t4"},
            ],
            "model": "gpt-4o-mini",
            "project_id": "batchy",
            "timeout": 10,
        },
        timeout=30,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["completed"], body["failed"]) == (4, 2, 2)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id["t4"]["status"] == "failed" and by_id["t4"]["error"]["code"] == "missing_field"
    done = [r for r in body["results"] if r["status"] == "completed"]
    assert all(r["content"] == "Hello from the fake provider." for r in done)
    assert body["total_tokens"] == sum(r["usage"]["total_tokens"] for r in done) > 0
    assert body["total_cost"] == pytest.approx(sum(r["cost"] for r in done))
    failed = [r for r in body["results"] if r["status"] == "failed" and r["id"] != "t4"]
    assert failed[0]["error"]["status"] == 400
    rows = live.wait_rows(3, project_id="batchy")
    assert sorted(r["outcome"] for r in rows) == ["error", "ok", "ok"]


def test_batch_rejects_malformed_bodies(live: ServerThread) -> None:
    url = live.url + "/v1/batch"
    for body, code in (
        (b"{nope", "invalid_json"),
        (b'{"prompts": []}', "missing_field"),
        (b'{"prompts": "x"}', "missing_field"),
        (b'{"prompts": [{"prompt": "x"}], "timeout": -1}', "invalid_parameter"),
        (orjson.dumps({"prompts": [{"prompt": "x"}] * 101}), "invalid_parameter"),
    ):
        response = httpx.post(url, content=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_batch_auto_routes_and_uses_the_cache(live: ServerThread, fake: FakeProviderThread) -> None:
    prompts = [{"prompt": "list the planets", "id": "a"}, {"prompt": "list the planets", "id": "b"}]
    first = httpx.post(live.url + "/v1/batch", json={"prompts": prompts[:1]}).json()
    assert first["results"][0]["model"] == "claude-haiku-4-5"
    again = httpx.post(live.url + "/v1/batch", json={"prompts": prompts[1:]}).json()
    assert again["results"][0]["cached"] is True and again["total_cost"] == 0
