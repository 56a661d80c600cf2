"""Service routes, the CLI, and a real server process stopped with SIGTERM losing nothing."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import ServerThread
from tests.fakes.provider import FakeProviderThread
from tollhouse.cli import main
from tollhouse.timeutil import Period, period_bounds


def test_health_is_the_union_of_the_seeds(gateway: ServerThread) -> None:
    body = httpx.get(gateway.url + "/health").json()
    for field in (
        "status",
        "uptime",
        "version",
        "timestamp",
        "services",
        "overrides_enabled",
        "override_rules",
        "cache_hits",
        "cache_misses",
    ):
        assert field in body
    assert body["status"] == "ok" and body["services"]["database"] == "ok"


def test_root_docs_and_unknown_paths(gateway: ServerThread) -> None:
    root = httpx.get(gateway.url + "/").json()
    assert root["docs"] == "/docs" and root["endpoints"]["usage"] == "/v1/usage"
    assert httpx.get(gateway.url + "/docs").status_code == 200
    assert httpx.get(gateway.url + "/redoc").status_code == 200
    assert "/v1/usage" in httpx.get(gateway.url + "/openapi.json").json()["paths"]
    missing = httpx.get(gateway.url + "/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found" and missing.json()["request_id"]
    wrong = httpx.get(gateway.url + "/v1/chat/completions")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_usage_per_project_and_period(gateway: ServerThread, fake: FakeProviderThread) -> None:
    for project, tokens in (("alpha", 100), ("alpha", 300), ("beta", 50)):
        fake.script({"usage": {"prompt_tokens": tokens, "completion_tokens": 0}})
        httpx.post(
            gateway.url + "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "project_id": project,
            },
        )
    gateway.wait_rows(3)
    for period in ("day", "week", "month"):
        usage = httpx.get(gateway.url + "/v1/usage", params={"project_id": "alpha", "period": period}).json()
        assert usage["total_tokens"] == 400 and usage["total_requests"] == 2
        assert usage["total_cost"] == pytest.approx(400 * 0.15e-6)
        assert usage["by_model"]["gpt-4o-mini"]["tokens"] == 400
    assert httpx.get(gateway.url + "/v1/usage", params={"project_id": "nobody"}).json()["total_tokens"] == 0
    bad = httpx.get(gateway.url + "/v1/usage", params={"period": "year"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"


def test_calendar_periods_in_a_time_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2026, 11, 22, 16, 30, tzinfo=UTC)  # 01:30 on the 23rd in Tokyo, a Monday
    assert period_bounds(Period.DAY, tokyo, now) == (
        datetime(2026, 11, 22, 15, tzinfo=UTC),
        datetime(2026, 11, 23, 15, tzinfo=UTC),
    )
    assert period_bounds(Period.WEEK, tokyo, now)[0] == datetime(2026, 11, 22, 15, tzinfo=UTC)
    assert period_bounds(Period.MONTH, tokyo, now) == (
        datetime(2026, 10, 31, 15, tzinfo=UTC),
        datetime(2026, 11, 30, 15, tzinfo=UTC),
    )
    paris = ZoneInfo("Europe/Paris")  # the day clocks go back is 25 hours long
    start, end = period_bounds(Period.DAY, paris, datetime(2026, 10, 25, 12, tzinfo=UTC))
    assert (end - start).total_seconds() == 25 * 3600


def test_cli_prices_and_db_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["prices", "show", "claude-haiku-4-5"])
    assert shown.exit_code == 0 and "$1" in shown.output and "$5" in shown.output
    unknown = runner.invoke(main, ["prices", "show", "no-such-model"])
    assert unknown.exit_code == 1 and "unpriced" in unknown.output
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(tmp_path))
    upgraded = runner.invoke(main, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and "revision" in upgraded.output
    assert (tmp_path / "tollhouse.db").exists()
    bad = runner.invoke(main, ["serve", "--config", str(tmp_path / "missing.toml")])
    assert bad.exit_code == 1 and "config file not found" in bad.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_server_loses_no_ledger_row(
    tmp_path: Path, fake: FakeProviderThread, stop_signal: signal.Signals
) -> None:
    port = _free_port()
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        f'[[providers]]\nname = "fake"\nprotocol = "openai"\nbase_url = "{fake.openai_base_url}"\n'
        'api_key = "k"\nmodels = ["*"]\n[ledger]\nflush_interval_ms = 60000\nbatch_size = 100000\n'
    )
    env = {
        **os.environ,
        "TOLLHOUSE_DATA_DIR": str(tmp_path / "data"),
        "TOLLHOUSE_CLAUDE_CODE__ENABLED": "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "tollhouse", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(
                    lambda _: httpx.post(url + "/v1/chat/completions", json=body).status_code, range(120)
                )
            )
        assert statuses == [200] * 120
        server.send_signal(stop_signal)  # rows are still queued: the flush interval is a minute
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.wait(timeout=30) in (0, -stop_signal)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
        stderr = server.stderr.read().decode() if server.stderr else ""
        if server.stderr:
            server.stderr.close()
    with sqlite3.connect(tmp_path / "data" / "tollhouse.db") as db:
        assert db.execute("SELECT count(*) FROM ledger").fetchone()[0] == 120, stderr
