"""Seed 003's API over a fake ``~/.claude`` written in every transcript layout, through the real app."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.db_urls import postgres_url
from tests.prices import usd
from tollhouse.app import create_app
from tollhouse.db.tables import ledger
from tollhouse.settings import load_settings

A1 = "aaaaaaaa-0000-4000-8000-000000000001"
B1 = "bbbbbbbb-0000-4000-8000-000000000002"
C1 = "cccccccc-0000-4000-8000-000000000003"
SONNET, HAIKU, OPUS = "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"
ANTHROPIC_SECRET = "sk-ant-api03-Zx8Qm2Lp9Rt4Wv7Yb1Nc"
GITHUB_SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
SLACK_SECRET = "xoxb-1234567890-abcdefghijkl"
PASSWORD = "hunter2hunter2"
SECRETS = (ANTHROPIC_SECRET, GITHUB_SECRET, SLACK_SECRET, PASSWORD, "Zx8Qm2Lp9Rt4")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(path: Path) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(path))


@dataclass
class Tree:
    home: Path
    root: Path
    alpha: Path
    beta: Path
    gamma: Path
    now: datetime

    @property
    def a1(self) -> Path:
        return self.root / "projects" / encode(self.alpha) / f"{A1}.jsonl"

    def user(self, session: str, cwd: Path, text: Any, at: datetime, **extra: Any) -> dict[str, Any]:
        return {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": str(cwd),
            "sessionId": session,
            "version": "2.1.39",
            "gitBranch": "feature/auth" if session == A1 else "main",
            "type": "user",
            "message": {"role": "user", "content": text},
            "uuid": f"u-{session[:4]}-{at.timestamp()}",
            "timestamp": iso(at),
            **extra,
        }

    def assistant(
        self,
        session: str,
        cwd: Path,
        model: str,
        ids: tuple[str, str],
        content: list[Any],
        at: datetime,
        **usage: int,
    ) -> dict[str, Any]:
        extra = {k: usage.pop(k) for k in list(usage) if k in ("isSidechain", "agentId")}
        return {
            "parentUuid": None,
            "isSidechain": False,
            "cwd": str(cwd),
            "sessionId": session,
            "version": "2.1.39",
            "gitBranch": "feature/auth" if session == A1 else "main",
            "message": {
                "model": model,
                "id": ids[0],
                "type": "message",
                "role": "assistant",
                "content": content,
                "usage": {
                    "input_tokens": usage.get("input", 0),
                    "output_tokens": usage.get("output", 0),
                    "cache_creation_input_tokens": usage.get("cache_write", 0),
                    "cache_read_input_tokens": usage.get("cache_read", 0),
                },
            },
            "requestId": ids[1],
            "type": "assistant",
            "uuid": f"a-{ids[0]}-{len(content)}-{at.timestamp()}",
            "timestamp": iso(at),
            **extra,
        }


def write_lines(path: Path, *lines: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        for line in lines:
            handle.write((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n")


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2))


def make_unreadable(path: Path) -> None:
    """A file open() accepts but read() fails on, even for root (who ignores chmod)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        path.unlink(missing_ok=True)
        path.symlink_to("/proc/self/mem")
    else:
        path.write_text("{}")
        path.chmod(0)


def build_tree(tmp_path: Path) -> Tree:
    home = tmp_path / "home"
    now = datetime.now(UTC).replace(microsecond=0)
    tree = Tree(
        home,
        home / ".claude",
        tmp_path / "work" / "alpha",
        tmp_path / "work" / "beta.lib",
        tmp_path / "work" / "gamma",
        now,
    )
    for folder in (tree.alpha, tree.beta, tree.gamma):
        folder.mkdir(parents=True)
    projects = tree.root / "projects"
    t = now - timedelta(hours=2)
    # 2.1.x: subagents in <session>/subagents/; one response split over two lines (text, tool_use).
    write_lines(
        tree.a1,
        tree.user(A1, tree.alpha, "Implement authentication for the API", t),
        tree.assistant(
            A1,
            tree.alpha,
            SONNET,
            ("msg_a1", "req_a1"),
            [{"type": "text", "text": "Looking."}],
            t + timedelta(seconds=1),
            input=100,
            output=5,
            cache_write=1000,
        ),
        tree.assistant(
            A1,
            tree.alpha,
            SONNET,
            ("msg_a1", "req_a1"),
            [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}],
            t + timedelta(seconds=2),
            input=100,
            output=50,
            cache_write=1000,
        ),
        tree.user(
            A1,
            tree.alpha,
            [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "app.py"}],
            t + timedelta(seconds=3),
        ),
        tree.assistant(
            A1,
            tree.alpha,
            SONNET,
            ("msg_a2", "req_a2"),
            [{"type": "text", "text": f"Done; found ANTHROPIC_API_KEY={ANTHROPIC_SECRET}"}],
            now - timedelta(hours=1),
            input=10,
            output=20,
            cache_read=1000,
        ),
    )
    write_lines(
        projects / encode(tree.alpha) / A1 / "subagents" / "agent-sub1.jsonl",
        tree.user(
            A1, tree.alpha, "Search the code", t + timedelta(seconds=4), isSidechain=True, agentId="sub1"
        ),
        tree.assistant(
            A1,
            tree.alpha,
            HAIKU,
            ("msg_s1", "req_s1"),
            [{"type": "text", "text": "Found it."}],
            t + timedelta(seconds=5),
            input=200,
            output=30,
            isSidechain=True,
            agentId="sub1",
        ),
    )
    # 2.0.x: a flat agent-*.jsonl next to the session file.
    b = now - timedelta(days=3)
    write_lines(
        projects / encode(tree.beta) / f"{B1}.jsonl",
        tree.user(B1, tree.beta, "Fix the flaky test", b),
        tree.assistant(
            B1,
            tree.beta,
            HAIKU,
            ("msg_b1", "req_b1"),
            [{"type": "text", "text": "Fixed."}],
            b + timedelta(minutes=5),
            input=500,
            output=100,
        ),
    )
    write_lines(
        projects / encode(tree.beta) / "agent-b2.jsonl",
        tree.assistant(
            B1,
            tree.beta,
            HAIKU,
            ("msg_b2", "req_b2"),
            [{"type": "text", "text": "sub"}],
            b + timedelta(minutes=1),
            input=50,
            output=5,
            isSidechain=True,
        ),
    )
    # 1.0.x: a summary line first, sidechain lines inline, and a malformed line.
    c = now - timedelta(days=20)
    write_lines(
        projects / encode(tree.gamma) / f"{C1}.jsonl",
        {"type": "summary", "summary": "Database migration plan", "leafUuid": "x"},
        tree.user(C1, tree.gamma, "Plan the migration", c),
        tree.assistant(
            C1,
            tree.gamma,
            OPUS,
            ("msg_c1", "req_c1"),
            [{"type": "text", "text": "Plan."}],
            c + timedelta(minutes=30),
            input=1000,
            output=2000,
        ),
        tree.user(C1, tree.gamma, "sidechain task", c + timedelta(minutes=31), isSidechain=True),
        tree.assistant(
            C1,
            tree.gamma,
            OPUS,
            ("msg_c2", "req_c2"),
            [{"type": "text", "text": "ok"}],
            c + timedelta(minutes=32),
            input=10,
            output=10,
            isSidechain=True,
        ),
        b'{"type":"assistant","message":{not json',
    )
    write_config(tree)
    return tree


def write_config(tree: Tree) -> None:
    write_json(
        tree.root / "settings.json",
        {
            "model": SONNET,
            "env": {"ANTHROPIC_API_KEY": ANTHROPIC_SECRET, "DEBUG": "1", "GH": GITHUB_SECRET},
            "permissions": {"allow": ["Bash(git:*)"]},
            "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "bash ~/.claude/hooks/stop.sh"}]}]},
        },
    )
    (tree.root / "hooks").mkdir()
    (tree.root / "hooks" / "stop.sh").write_text(
        f"#!/bin/bash\n# Description: Notify when done\nexport SLACK_TOKEN={SLACK_SECRET}\necho done\n"
    )
    write_json(
        tree.alpha / ".claude" / "settings.json",
        {
            "model": OPUS,
            "permissions": {"allow": ["Read(*)"]},
            "hooks": {
                "PreToolUse": [
                    {
                        "matcher": "Bash",
                        "hooks": [
                            {
                                "type": "command",
                                "command": 'bash "$CLAUDE_PROJECT_DIR/.claude/hooks/check.sh"',
                                "timeout": 30,
                            },
                            {"type": "command", "command": "echo inline"},
                        ],
                    }
                ],
                "SessionStart": [
                    {"hooks": [{"type": "command", "command": "$CLAUDE_PROJECT_DIR/missing.sh"}]}
                ],
            },
        },
    )
    (tree.alpha / ".claude" / "hooks").mkdir()
    (tree.alpha / ".claude" / "hooks" / "check.sh").write_text("#!/bin/sh\nexit 0\n")
    write_json(
        tree.alpha / ".claude" / "settings.local.json",
        {"env": {"MY_PASSWORD": PASSWORD}, "permissions": {"allow": ["Bash(ls)"]}},
    )
    write_json(
        tree.home / ".claude.json",
        {
            "userID": "f" * 64,
            "oauthAccount": {"emailAddress": "dev@example.com"},
            "mcpServers": {
                "github": {
                    "type": "stdio",
                    "command": "npx",
                    "args": ["-y", "server-github"],
                    "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": GITHUB_SECRET},
                },
            },
            "projects": {
                str(tree.alpha): {
                    "mcpServers": {"db": {"command": "db-mcp", "env": {"DB_PASSWORD": PASSWORD}}}
                }
            },
        },
    )
    write_json(
        tree.alpha / ".mcp.json",
        {
            "mcpServers": {
                "github": {
                    "type": "http",
                    "url": "https://mcp.example.com/github",
                    "headers": {"Authorization": f"Bearer {ANTHROPIC_SECRET}"},
                }
            }
        },
    )
    write_json(
        tree.home / ".config" / "Claude" / "claude_desktop_config.json",
        {"mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "server-filesystem", "/home"]}}},
    )
    agents = tree.root / "agents"
    agents.mkdir()
    (agents / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: Reviews code\nmodel: sonnet\nskills: [security, style]\n"
        "---\n# Reviewer\n"
    )
    (tree.alpha / ".claude" / "agents").mkdir()
    (tree.alpha / ".claude" / "agents" / "local.md").write_text("No front matter here.\n")
    (tree.root / "commands" / "git").mkdir(parents=True)
    (tree.root / "commands" / "git" / "commit.md").write_text(
        "---\ndescription: Commit staged work\nallowed-tools: Bash(git:*)\n---\nCommit $ARGUMENTS\n"
    )
    (tree.root / "skills" / "ship").mkdir(parents=True)
    (tree.root / "skills" / "ship" / "SKILL.md").write_text(
        "---\nname: ship\nversion: 1.0.0description: Build: commit, push\n---\nShip it.\n"
    )


def make_app(
    tree: Tree, tmp_path: Path, timezone: str = "UTC", database_url: str | None = None, **claude_code: Any
) -> FastAPI:
    section = {"config_dirs": [str(tree.root)], **claude_code}
    settings = load_settings(
        None, data_dir=tmp_path / "data", timezone=timezone, database_url=database_url, claude_code=section
    )
    return create_app(settings)


async def wait_for(client: httpx.AsyncClient, url: str, check: Any, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await client.get(url)).json()
        if check(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} never satisfied the check; last answer: {body}")
        await asyncio.sleep(0.05)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return build_tree(tmp_path)


@pytest.fixture
async def client(tree: Tree, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(tree, tmp_path)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tollhouse") as client,
    ):
        await wait_for(client, "/api/health", lambda b: b["first_import_done"])
        yield client


def assert_no_secret(response: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in response.text


@pytest.fixture
def cwd_elsewhere(tmp_path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(tmp_path)
    yield
    os.chdir(old)


# -- health and stats -----------------------------------------------------------------------------


async def test_health_reports_the_first_import(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/health")).json()
    assert body["status"] == "healthy"
    assert body["sessions"] == 3
    assert body["stats_loaded"] is True and body["first_import_done"] is True
    assert body["unreadable_files"] == []


async def test_stats_totals_forecast_and_breakdowns(client: httpx.AsyncClient, tree: Tree) -> None:
    response = await client.get("/api/stats")
    assert response.status_code == 200
    body = response.json()
    sessions = (await client.get("/api/sessions")).json()["sessions"]
    assert body["totalSessions"] == 3
    assert body["totalMessages"] == sum(s["messages"] for s in sessions)
    assert body["totalTokens"] == 2410 + 655 + 3020
    assert body["totalCost"] == pytest.approx(sum(s["cost"] for s in sessions))
    assert set(body["modelUsage"]) == {SONNET, HAIKU, OPUS}
    assert body["modelUsage"][OPUS]["outputTokens"] == 2010
    assert body["mostUsedModel"] in (SONNET, HAIKU)
    assert body["longestSession"]["sessionId"] == A1
    assert len(body["dailyTokens30d"]) == 30 and len(body["forecastTokens30d"]) == 30
    # A1 (two hours ago, so today or, just after midnight, yesterday) is the only recent session.
    assert sum(body["dailyTokens30d"][-2:]) == 2410
    assert 0 <= body["forecastConfidence"] <= 1
    assert body["forecast"]["costLow"] <= body["forecastCost30d"] <= body["forecast"]["costHigh"]
    assert body["projectsByCost"][0]["project"] == str(tree.gamma)
    assert sum(p["percentage"] for p in body["projectsByCost"]) == pytest.approx(100, abs=0.05)
    assert body["mcpServersCount"] == 2  # github and db; Claude Desktop's servers are not Claude Code's
    assert body["firstSessionDate"].startswith((tree.now - timedelta(days=20)).date().isoformat())
    a1_day = (tree.now - timedelta(hours=2, seconds=-2)).date().isoformat()  # A1's tool call
    a1 = next(d for d in body["dailyActivity"] if d["date"] == a1_day)
    assert a1["sessionCount"] == 1 and a1["toolCallCount"] == 1
    assert sum(body["hourCounts"].values()) == body["totalMessages"] + 5  # plus the subagents' messages


# -- sessions ------------------------------------------------------------------------------------


async def test_sessions_default_order_and_fields(client: httpx.AsyncClient, tree: Tree) -> None:
    body = (await client.get("/api/sessions")).json()
    assert [s["id"] for s in body["sessions"]] == [A1, B1, C1]
    assert body["total"] == 3 and body["page"] == 0 and body["page_size"] == 50
    a1 = body["sessions"][0]
    assert a1["project"] == str(tree.alpha) and a1["project_dir"] == encode(tree.alpha)
    assert a1["preview"] == "Implement authentication for the API"
    assert a1["git_branch"] == "feature/auth"
    assert a1["messages"] == 4 and a1["subagent_messages"] == 2 and a1["tool_calls"] == 1
    assert a1["subagents"] == ["sub1"]
    assert a1["model"] == SONNET and a1["models"] == [HAIKU, SONNET]
    # msg_a1 counted once, as its larger copy (output 50, not 5)
    assert (a1["input_tokens"], a1["output_tokens"]) == (310, 100)
    assert (a1["cache_creation_tokens"], a1["cache_read_tokens"]) == (1000, 1000)
    assert a1["tokens"] == 2410
    expected = usd(SONNET, input=110, output=70, cache_write_5m=1000, cache_read=1000) + usd(
        HAIKU, input=200, output=30
    )
    assert a1["cost"] == pytest.approx(float(expected), abs=1e-9)
    assert a1["status"] == "completed"
    assert a1["duration_seconds"] == 3600
    c1 = body["sessions"][2]
    assert c1["title"] == "Database migration plan" and c1["preview"] == "Plan the migration"
    assert c1["messages"] == 2 and c1["subagent_messages"] == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("search=authentication", [A1]),
        ("search=MIGRATION", [C1]),  # the summary and first prompt, case-insensitively
        (f"search={B1[:8]}", [B1]),
        ("project=beta", [B1]),
        ("project=-work-alpha", [A1]),  # the encoded folder name works too
        ("model=opus", [C1]),
        ("model=haiku", [A1, B1]),  # A1's subagent used haiku
        ("since=7d", [A1, B1]),
        ("since=90m", [A1]),
        ("since=2000-01-01", [A1, B1, C1]),
        ("sort=tokens", [C1, A1, B1]),
        ("sort=cost&order=asc", [B1, A1, C1]),
        ("sort=messages&order=asc", [B1, C1, A1]),
        ("sort=duration", [A1, C1, B1]),
        ("order=asc", [C1, B1, A1]),
        ("limit=2", [A1, B1]),
        ("limit=2&page=1", [C1]),
        ("limit=2&page=5", []),
    ],
)
async def test_sessions_filters_sort_and_pages(
    client: httpx.AsyncClient, query: str, expected: list[str]
) -> None:
    response = await client.get(f"/api/sessions?{query}")
    assert response.status_code == 200
    assert [s["id"] for s in response.json()["sessions"]] == expected


async def test_sessions_total_counts_matches_before_paging(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/sessions?limit=1&page=1&since=7d")).json()
    assert body["total"] == 2 and body["page"] == 1 and body["page_size"] == 1
    assert [s["id"] for s in body["sessions"]] == [B1]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("sort=size", "sort"),
        ("order=up", "order"),
        ("since=yesterday", "since"),
        ("since=7y", "since"),
    ],
)
async def test_sessions_rejects_bad_parameters(client: httpx.AsyncClient, query: str, param: str) -> None:
    response = await client.get(f"/api/sessions?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["details"]["param"] == param
    assert param in body["error"]["message"]
    assert body["request_id"] and body["timestamp"]


async def test_recent_sessions(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/sessions/recent")).json()
    assert [s["id"] for s in body["sessions"]] == [A1, B1, C1] and body["total"] == 3
    body = (await client.get("/api/sessions/recent?limit=1")).json()
    assert [s["id"] for s in body["sessions"]] == [A1] and body["total"] == 3
    for bad in ("0", "101", "x"):
        response = await client.get(f"/api/sessions/recent?limit={bad}")
        assert response.status_code == 400
        assert response.json()["error"]["details"]["param"] == "limit"


# -- conversation ----------------------------------------------------------------------------------


async def test_conversation_with_tool_calls_and_subagents(client: httpx.AsyncClient, tree: Tree) -> None:
    response = await client.get(f"/api/conversation/{A1}")
    assert response.status_code == 200
    body = response.json()
    assert (
        body["sessionId"] == A1 and body["project"] == str(tree.alpha) and body["gitBranch"] == "feature/auth"
    )
    assert [m["type"] for m in body["messages"]] == ["user", "assistant", "user", "assistant"]
    merged = body["messages"][1]
    assert [b["type"] for b in merged["content"]] == ["text", "tool_use"]  # two lines, one message
    assert merged["usage"]["output_tokens"] == 50
    (call,) = body["toolCalls"]
    assert call["name"] == "Bash" and call["input"] == {"command": "ls"}
    assert call["result"] == "app.py" and call["isError"] is False
    (agent,) = body["subagents"]
    assert agent["agentId"] == "sub1" and agent["messageCount"] == 2
    assert agent["messages"][1]["model"] == HAIKU
    assert body["totalMessages"] == 6 and body["tokens"] == 2410
    assert ANTHROPIC_SECRET not in response.text and "sk-a" in body["messages"][3]["content"][0]["text"]


async def test_conversation_of_old_layouts(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"/api/conversation/{C1}")).json()
    assert body["title"] == "Database migration plan"
    assert [m["isSidechain"] for m in body["messages"]] == [False, False, True, True]
    assert body["malformedLines"] == 1
    body = (await client.get(f"/api/conversation/{B1}")).json()
    assert [a["agentId"] for a in body["subagents"]] == ["b2"]


async def test_conversation_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/conversation/no-such-session")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["details"] == {"session_id": "no-such-session"}


async def test_unreadable_transcript(tree: Tree, tmp_path: Path) -> None:
    broken = tree.root / "projects" / encode(tree.alpha) / "dddddddd-0000-4000-8000-000000000004.jsonl"
    make_unreadable(broken)
    app = make_app(tree, tmp_path)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        health = await wait_for(c, "/api/health", lambda b: b["first_import_done"])
        assert health["status"] == "degraded"
        assert str(broken) in health["unreadable_files"]
        sessions = (await c.get("/api/sessions")).json()
        assert sessions["total"] == 3  # the others are still served
        response = await c.get(f"/api/conversation/{broken.stem}")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "unreadable_file"
        assert response.json()["error"]["details"]["path"] == str(broken)


# -- configuration ----------------------------------------------------------------------------------


async def test_config_merged_scopes_and_masking(client: httpx.AsyncClient, tree: Tree) -> None:
    response = await client.get("/api/config/merged")  # default project: the latest session's
    assert response.status_code == 200
    assert_no_secret(response)
    body = response.json()
    assert body["projectPath"] == str(tree.alpha)
    assert body["global"]["model"] == SONNET and body["project"]["model"] == OPUS
    assert body["local"]["env"]["MY_PASSWORD"] == "…(masked)"
    assert body["merged"]["model"] == OPUS
    assert body["merged"]["permissions"]["allow"] == ["Bash(git:*)", "Read(*)", "Bash(ls)"]
    assert body["merged"]["env"]["ANTHROPIC_API_KEY"] == "sk-a…(masked)"
    assert body["merged"]["env"]["DEBUG"] == "1"
    assert body["merged"]["env"]["GH"] == "ghp_…(masked)"
    assert set(body["merged"]["hooks"]) == {"Stop", "PreToolUse", "SessionStart"}
    assert body["errors"] == []
    other = (await client.get("/api/config/merged", params={"project": str(tree.beta)})).json()
    assert (
        other["projectPath"] == str(tree.beta)
        and other["project"] == {}
        and other["merged"]["model"] == SONNET
    )


async def test_config_reports_invalid_and_unreadable_files(client: httpx.AsyncClient, tree: Tree) -> None:
    (tree.alpha / ".claude" / "settings.json").write_text("{ not json")
    make_unreadable(tree.alpha / ".claude" / "settings.local.json")
    response = await client.get("/api/config/merged", params={"project": str(tree.alpha)})
    assert response.status_code == 200
    body = response.json()
    errors = {e["scope"]: e["error"] for e in body["errors"]}
    assert errors["project"].startswith("invalid JSON")
    assert errors["local"].startswith("unreadable")
    assert body["merged"]["model"] == SONNET  # the global layer still applies
    hooks = (await client.get("/api/hooks", params={"project": str(tree.alpha)})).json()
    assert [h["event"] for h in hooks["hooks"]] == ["Stop"]
    assert {e["scope"] for e in hooks["errors"]} == {"project", "local"}


async def test_hooks_with_script_content(client: httpx.AsyncClient, tree: Tree) -> None:
    response = await client.get("/api/hooks")
    assert_no_secret(response)
    body = response.json()
    hooks = {h["name"]: h for h in body["hooks"]}
    assert body["total"] == 4 and set(hooks) == {"Stop", "PreToolUse-0-0", "PreToolUse-0-1", "SessionStart"}
    stop = hooks["Stop"]
    assert stop["scope"] == "global" and stop["scriptPath"] == str(tree.root / "hooks" / "stop.sh")
    assert "echo done" in stop["scriptContent"] and "xoxb…(masked)" in stop["scriptContent"]
    assert stop["description"] == "Notify when done"
    check = hooks["PreToolUse-0-0"]
    assert check["matcher"] == "Bash" and check["timeout"] == 30 and check["scope"] == "project"
    assert check["scriptPath"] == str(tree.alpha / ".claude" / "hooks" / "check.sh")
    assert check["scriptContent"] == "#!/bin/sh\nexit 0\n"
    inline = hooks["PreToolUse-0-1"]
    assert (
        inline["scriptPath"] is None
        and inline["scriptContent"] is None
        and inline["description"] == "echo inline"
    )
    missing = hooks["SessionStart"]
    assert missing["scriptContent"] is None and missing["scriptError"] == "not found"


async def test_mcp_from_every_location(client: httpx.AsyncClient, tree: Tree) -> None:
    response = await client.get("/api/mcp")
    assert_no_secret(response)
    body = response.json()
    found = {(s["scope"], s["name"]): s for s in body["servers"]}
    assert set(found) == {
        ("user", "github"),
        ("local", "db"),
        ("project", "github"),
        ("desktop", "filesystem"),
    }
    user = found[("user", "github")]
    assert (
        user["serverType"] == "stdio" and user["command"] == "npx" and user["args"] == ["-y", "server-github"]
    )
    assert user["hasEnv"] and user["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"] == "ghp_…(masked)"
    assert user["shadowedBy"] == [{"scope": "project", "project": str(tree.alpha)}]
    assert user["source"] == str(tree.home / ".claude.json")
    assert found[("local", "db")]["project"] == str(tree.alpha)
    assert found[("local", "db")]["env"]["DB_PASSWORD"] == "…(masked)"
    project = found[("project", "github")]
    assert project["serverType"] == "http" and project["url"] == "https://mcp.example.com/github"
    assert project["headers"]["Authorization"] == "Bear…(masked)"
    assert project["source"] == str(tree.alpha / ".mcp.json")
    assert found[("desktop", "filesystem")]["shadowedBy"] == []
    assert (
        body["total"] == 4 and "oauthAccount" not in response.text and "dev@example.com" not in response.text
    )


async def test_mcp_reports_a_broken_file(client: httpx.AsyncClient, tree: Tree) -> None:
    (tree.alpha / ".mcp.json").write_text("[1, 2")
    body = (await client.get("/api/mcp")).json()
    assert [e["path"] for e in body["errors"]] == [str(tree.alpha / ".mcp.json")]
    assert {s["scope"] for s in body["servers"]} == {"user", "local", "desktop"}


async def test_agents_commands_skills(client: httpx.AsyncClient, tree: Tree) -> None:
    agents = (await client.get("/api/agents")).json()
    by_name = {a["name"]: a for a in agents["items"]}
    assert agents["total"] == 2
    assert by_name["reviewer"]["frontmatter"] == {
        "name": "reviewer",
        "description": "Reviews code",
        "model": "sonnet",
        "skills": ["security", "style"],
    }
    assert by_name["reviewer"]["body"] == "# Reviewer\n" and by_name["reviewer"]["scope"] == "user"
    assert by_name["local"] == {
        "name": "local",
        "frontmatter": {},
        "body": "No front matter here.\n",
        "path": str(tree.alpha / ".claude" / "agents" / "local.md"),
        "scope": "project",
    }
    commands = (await client.get("/api/commands")).json()
    (commit,) = commands["items"]
    assert commit["name"] == "git:commit" and commit["frontmatter"]["allowed-tools"] == "Bash(git:*)"
    assert commit["body"] == "Commit $ARGUMENTS\n"
    skills = (await client.get("/api/skills")).json()
    (ship,) = skills["items"]
    assert ship["path"] == str(tree.root / "skills" / "ship" / "SKILL.md") and ship["body"] == "Ship it.\n"
    assert ship["error"].startswith("invalid YAML")
    assert ship["frontmatter"] == {"name": "ship", "version": "1.0.0description: Build: commit, push"}
    only_user = (await client.get("/api/agents", params={"project": str(tree.beta)})).json()
    assert [a["name"] for a in only_user["items"]] == ["reviewer"]


# -- machine-wide analytics and the disabled component -------------------------------------------------


async def test_machine_stats_cover_the_whole_ledger(client: httpx.AsyncClient, tree: Tree) -> None:
    stats = (await client.get("/api/stats")).json()
    response = await client.get("/api/machine/stats")
    assert response.status_code == 200
    body = response.json()
    assert body["totalCost"] == pytest.approx(stats["totalCost"])
    assert body["totalTokens"] == stats["totalTokens"]
    assert body["totalCalls"] == 7  # a1 (once), a2, s1, b1, b2, c1 and c2 (an inline sidechain response)
    assert body["activeProjects"] == 3 and set(body["sources"]) == {"claude-code"}
    names = {p["name"] for p in body["projects"]}
    assert names == {str(tree.alpha), str(tree.beta), str(tree.gamma)}
    assert {m["name"] for m in body["models"]} == {SONNET, HAIKU, OPUS}
    chart = body["chartData"]
    assert sum(d["cost"] for d in chart["costOverTime"]) == pytest.approx(body["totalCost"])
    assert sum(m["count"] for m in chart["modelDistribution"]) == body["totalCalls"]


async def test_disabled_component(tree: Tree, tmp_path: Path) -> None:
    app = make_app(tree, tmp_path, enabled=False)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        assert (await c.get("/api/health")).json()["status"] == "disabled"
        response = await c.get("/api/sessions")
        assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
        assert (await c.get("/api/machine/stats")).json()["totalCalls"] == 0


async def test_without_watching_requests_see_new_lines(tree: Tree, tmp_path: Path) -> None:
    app = make_app(tree, tmp_path, watch=False)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        await wait_for(c, "/api/health", lambda b: b["first_import_done"])
        write_lines(tree.a1, tree.user(A1, tree.alpha, "One more thing", datetime.now(UTC)))
        body = (await c.get("/api/sessions?limit=1")).json()
        assert body["sessions"][0]["messages"] == 5


async def test_machine_stats_include_gateway_calls(tree: Tree, tmp_path: Path) -> None:
    app = make_app(tree, tmp_path, timezone="Pacific/Kiritimati")
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        await wait_for(c, "/api/health", lambda b: b["first_import_done"])
        claude_only = (await c.get("/api/stats")).json()
        at = datetime(2026, 1, 5, 11, 30, tzinfo=UTC)  # 01:30 on 6 January in UTC+14
        async with app.state.engine.begin() as conn:
            await conn.execute(
                ledger.insert().values(
                    id="log_gateway1", created_at=at, project_id="default", source="gateway",
                    route="/v1/chat/completions", model_served="gpt-4o", status_code=200, outcome="ok",
                    input_tokens=1000, output_tokens=100, cost_nanos=3_500_000, price_version="test",
                )
            )  # fmt: skip
        body = (await c.get("/api/machine/stats")).json()
        assert set(body["sources"]) == {"claude-code", "gateway"}
        assert body["sources"]["gateway"] == {
            "calls": 1, "inputTokens": 1000, "outputTokens": 100, "cacheReadTokens": 0, "cacheWriteTokens": 0,
            "totalTokens": 1100, "cost": 0.0035,
        }  # fmt: skip
        assert body["totalCost"] == pytest.approx(claude_only["totalCost"] + 0.0035)
        assert body["activeProjects"] == 3  # the gateway call is older than 30 days
        assert body["totalProjects"] == 4 and body["timezone"] == "Pacific/Kiritimati"
        assert body["chartData"]["costOverTime"][0] == {"date": "2026-01-06T00:00:00+14:00", "cost": 0.0035}
        assert (await c.get("/api/stats")).json()["totalCost"] == claude_only["totalCost"]  # Claude Code only


async def test_stats_and_machine_stats_on_postgresql(tree: Tree, tmp_path: Path) -> None:
    """The hour buckets are dialect-specific SQL: the same answers on PostgreSQL as on SQLite."""
    base = postgres_url()
    lite = make_app(tree, tmp_path / "sqlite")
    async with (
        lite.router.lifespan_context(lite),
        httpx.AsyncClient(transport=httpx.ASGITransport(lite), base_url="http://t") as c,
    ):
        await wait_for(c, "/api/health", lambda b: b["first_import_done"])
        sqlite_stats = (await c.get("/api/stats")).json()
        sqlite_machine = (await c.get("/api/machine/stats")).json()
    name = f"claude_api_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        app = make_app(tree, tmp_path, database_url=base.rsplit("/", 1)[0] + f"/{name}")
        transport = httpx.ASGITransport(app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as c,
        ):
            await wait_for(c, "/api/health", lambda b: b["first_import_done"])
            stats = (await c.get("/api/stats")).json()
            assert stats["totalTokens"] == 2410 + 655 + 3020 and sum(stats["dailyTokens30d"][-2:]) == 2410
            machine = (await c.get("/api/machine/stats")).json()
            assert machine["totalCalls"] == 7 and machine["totalCost"] == pytest.approx(stats["totalCost"])
            # The same days and amounts as on SQLite, whatever time of day the suite runs.
            assert machine["chartData"]["costOverTime"] == sqlite_machine["chartData"]["costOverTime"]
            assert stats["dailyTokens30d"] == sqlite_stats["dailyTokens30d"]
            sessions = (await c.get("/api/sessions?sort=tokens")).json()["sessions"]
            assert [s["id"] for s in sessions] == [C1, A1, B1]
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
