"""The usage export streams: a million ledger rows come out whole, in order, without being
loaded into memory (the server's memory grows by a small fraction of what they would take)."""

from __future__ import annotations

import gc
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import httpx
import psutil

from tests.conftest import StartGateway

ROWS = 1_000_000


def test_a_million_row_export_streams_in_bounded_memory(start_gateway: StartGateway) -> None:
    gateway = start_gateway(admin_key="admin-secret")
    admin = {"authorization": "Bearer admin-secret"}
    project = httpx.post(gateway.url + "/api/projects", json={"name": "big"}, headers=admin).json()["id"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with sqlite3.connect(gateway.settings.data_dir / "tollhouse.db") as db:
        db.executemany(
            "INSERT INTO ledger (id, created_at, project_id, source, route, stream, status_code, outcome,"
            " input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,"
            " reasoning_tokens, cost_nanos, saved_cost_nanos, tokens_saved, cached, unpriced, price_version,"
            " is_subagent, model_served)"
            " VALUES (?, ?, ?, 'gateway', '/v1/chat/completions', 0, 200, 'ok',"
            " ?, 0, 0, 0, ?, 0, ?, 0, 0, 0, 0, 'test', 0, 'gpt-4o-mini')",
            (
                (
                    f"log_{i:012d}",
                    (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    project,
                    i % 100,
                    1,
                    i,
                )
                for i in range(ROWS)
            ),
        )
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    lines = 0
    cost_total = 0.0
    first = last = ""
    started = time.monotonic()
    url = f"{gateway.url}/api/projects/{project}/usage/export?from=2026-01-01&to=2026-02-01"
    with httpx.stream("GET", url, headers=admin, timeout=300) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        for line in response.iter_lines():
            if lines == 0:
                assert line.startswith("date,model,tokens_used,cost_usd")
            else:
                if lines == 1:
                    first = line
                last = line
                cost_total += float(line.split(",")[3])
            lines += 1
            if lines % 50_000 == 0:
                peak = max(peak, process.memory_info().rss)
    elapsed = time.monotonic() - started
    assert lines == ROWS + 1
    assert "log_000000000000" in first and f"log_{ROWS - 1:012d}" in last  # oldest first, all of them
    expected_usd = sum(range(ROWS)) / 1e9
    assert abs(cost_total - expected_usd) < 1e-3
    grown_mb = (peak - before) / 2**20
    # Loaded whole, a million rows would take several hundred MB here; a stream holds one batch.
    assert grown_mb < 80, f"export grew the process by {grown_mb:.0f} MB"
    assert elapsed < 240
