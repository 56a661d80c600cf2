"""Live parts of seed 003's API: running ``claude`` processes and the SSE stream on a real server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ServerThread
from tests.test_claude_api import (
    A1,
    B1,
    SONNET,
    Tree,
    build_tree,
    encode,
    wait_for,
    write_json,
    write_lines,
)
from tests.test_claude_api import client as client  # the fixture, shared
from tests.test_claude_api import tree as tree  # the fixture, shared
from tollhouse.settings import load_settings


@pytest.fixture
def claude_program(tmp_path: Path) -> Path:
    """A stand-in for the Claude Code CLI: a script named ``claude`` that just waits."""
    program = tmp_path / "bin" / "claude"
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
    program.chmod(0o755)
    return program


@pytest.fixture
def spawn(claude_program: Path) -> Iterator[Any]:
    running: list[subprocess.Popen[bytes]] = []

    def start(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([str(claude_program), *args], cwd=cwd)
        running.append(process)
        return process

    yield start
    for process in running:
        process.terminate()
        process.wait(timeout=10)


async def test_live_sessions_lists_claude_processes(
    client: httpx.AsyncClient, tree: Tree, spawn: Any
) -> None:
    in_alpha = spawn(tree.alpha)
    resumed = spawn(tree.beta, "--resume", B1, "--model", "opus")
    idle = spawn(tree.gamma)
    await asyncio.sleep(0.1)
    later = datetime.now(UTC) + timedelta(seconds=1)
    write_lines(tree.a1, tree.user(A1, tree.alpha, "Still there?", later))

    def matched(body: dict[str, Any]) -> bool:
        rows = {row["pid"]: row for row in body["sessions"]}
        return in_alpha.pid in rows and rows[in_alpha.pid]["sessionId"] == A1

    body = await wait_for(client, "/api/sessions/live", matched)
    rows = {row["pid"]: row for row in body["sessions"]}
    assert {in_alpha.pid, resumed.pid, idle.pid} <= set(rows)
    row = rows[in_alpha.pid]
    assert row["workingDirectory"] == str(tree.alpha) and row["command"] == "claude"
    assert row["cpuPercent"] >= 0 and row["memoryMb"] >= 1 and row["memoryBytes"] > 0
    assert row["tokens"] == 2410
    started = datetime.fromisoformat(row["startTime"])
    assert abs((started - datetime.now(UTC)).total_seconds()) < 60
    assert rows[resumed.pid]["sessionId"] == B1 and rows[resumed.pid]["model"] == "opus"
    assert rows[idle.pid]["sessionId"] is None  # nothing written since it started
    assert body["total"] == len(body["sessions"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerThread, Tree]]:
    tree = build_tree(tmp_path)
    settings = load_settings(None, data_dir=tmp_path / "data", claude_code={"config_dirs": [str(tree.root)]})
    running = ServerThread(settings)
    running.start()
    yield running, tree
    running.stop()


async def next_event(lines: AsyncIterator[str], wanted: str, timeout: float = 15.0) -> dict[str, Any]:
    """The data of the next ``wanted`` event, skipping other events and comments."""
    async with asyncio.timeout(timeout):
        kind = None
        async for line in lines:
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: ") and kind == wanted:
                data: dict[str, Any] = orjson.loads(line[len("data: ") :])
                return data
    raise AssertionError("the stream ended")


async def test_sse_reports_changes(server: tuple[ServerThread, Tree]) -> None:
    running, tree = server
    async with httpx.AsyncClient(base_url=running.url, timeout=20) as client:
        await wait_for(client, "/api/health", lambda b: b["first_import_done"])
        async with client.stream("GET", "/api/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"

            now = datetime.now(UTC)
            write_lines(
                tree.a1,
                tree.assistant(
                    A1,
                    tree.alpha,
                    SONNET,
                    ("msg_a3", "req_a3"),
                    [{"type": "text", "text": "more"}],
                    now,
                    input=1,
                    output=1,
                ),
            )
            updated = await next_event(lines, "session_updated")
            assert (
                updated["id"] == A1
                and updated["message_count"] == 5
                and updated["project"] == str(tree.alpha)
            )
            assert updated["tokens"] == 2412
            stats = await next_event(lines, "stats_updated")
            assert stats["total_tokens"] == 2410 + 655 + 3020 + 2 and stats["total_sessions"] == 3

            new_id = "eeeeeeee-0000-4000-8000-000000000005"
            write_lines(
                tree.root / "projects" / encode(tree.beta) / f"{new_id}.jsonl",
                tree.user(new_id, tree.beta, "A new session", now),
            )
            created = await next_event(lines, "session_created")
            assert created["id"] == new_id and created["project"] == str(tree.beta)

            write_json(tree.root / "settings.json", {"model": "claude-opus-4-5"})
            changed = await next_event(lines, "config_changed")
            assert changed == {
                "scope": "global",
                "kind": "settings",
                "path": str(tree.root / "settings.json"),
            }

            write_json(tree.alpha / ".claude" / "settings.local.json", {"env": {}})
            changed = await next_event(lines, "config_changed")
            assert changed["scope"] == "local" and changed["path"] == str(
                tree.alpha / ".claude" / "settings.local.json"
            )
    health = httpx.get(f"{running.url}/api/health").json()
    assert health["sessions"] == 4


async def test_sse_keepalive(server: tuple[ServerThread, Tree]) -> None:
    running, _ = server
    running.app.state.claude_code.keepalive_s = 0.2
    async with (
        httpx.AsyncClient(base_url=running.url, timeout=20) as client,
        client.stream("GET", "/api/events") as response,
    ):
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        async with asyncio.timeout(5):
            async for line in lines:
                if line == ": keepalive":
                    break
