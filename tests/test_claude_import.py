"""The Claude Code importer: discovery, de-duplication, pricing, incremental reads, bad input."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.prices import nanos
from tollhouse.claude_code.discovery import claude_roots, transcript_files
from tollhouse.claude_code.importer import ClaudeImporter
from tollhouse.claude_code.store import LEDGER_COLUMNS, entries
from tollhouse.db.engine import create_engine, migrate
from tollhouse.db.tables import ledger
from tollhouse.pricing import load_price_table

SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'th.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "claude"
    (path / "projects").mkdir(parents=True)
    return path


def line(
    mid: str | None,
    *,
    model: str = SONNET,
    session: str = "s1",
    ts: str = "2025-09-01T10:00:00.000Z",
    usage: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    message: dict[str, Any] = {
        "model": model,
        "role": "assistant",
        "content": [{"type": "text", "text": "ok"}],
        "usage": usage or {"input_tokens": 100, "output_tokens": 10},
    }
    if mid is not None:
        message["id"] = mid
    record = {
        "type": "assistant",
        "sessionId": session,
        "cwd": "/home/dev/app",
        "timestamp": ts,
        "requestId": f"req_{mid}",
        "message": message,
        **extra,
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def user(session: str = "s1") -> str:
    record = {"type": "user", "sessionId": session, "message": {"role": "user", "content": "hi"}}
    return json.dumps(record, separators=(",", ":")) + "\n"


def write(path: Path, *lines: str, mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode) as handle:
        handle.write("".join(lines))
    return path


def importer(engine: AsyncEngine, root: Path, **kwargs: Any) -> ClaudeImporter:
    return ClaudeImporter(engine, load_price_table(), [root], **kwargs)


async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(ledger).order_by(ledger.c.created_at, ledger.c.external_id))
        return [dict(r._mapping) for r in result]


async def detail(engine: AsyncEngine, key: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        claude_entries = entries()
        result = await conn.execute(select(claude_entries).where(claude_entries.c.external_id == key))
        return dict(result.one()._mapping)


def project(root: Path) -> Path:
    return root / "projects" / "-home-dev-app"


async def test_imports_only_assistant_lines_with_usage(engine: AsyncEngine, root: Path) -> None:
    progress = {
        "type": "progress",
        "data": {"message": {"message": {"id": "nested", "usage": {"input_tokens": 5}}}},
    }
    write(
        project(root) / "s1.jsonl",
        user(),
        line("m1"),
        json.dumps(progress) + "\n",
        json.dumps({"type": "attachment", "attachment": {"type": "date"}}) + "\n",
        json.dumps({"type": "assistant", "message": {"id": "no-usage"}}) + "\n",
    )
    result = await importer(engine, root).scan()
    assert (result.files_seen, result.files_read, result.lines_read) == (1, 1, 5)
    assert result.entries_added == 1 and result.malformed_lines == 0
    (row,) = await rows(engine)
    assert row["source"] == row["route"] == "claude-code"
    assert row["project_id"] == "/home/dev/app" and row["session_id"] == "s1"
    assert row["external_id"] == "m1:req_m1" and row["model_served"] == SONNET
    assert (row["status_code"], row["outcome"], row["is_subagent"]) == (200, "ok", False)
    assert row["cost_nanos"] == nanos("claude-sonnet-4-5", input=100, output=10)


async def test_costs_match_a_hand_computation(engine: AsyncEngine, root: Path) -> None:
    usage = {
        "input_tokens": 1234,
        "output_tokens": 567,
        "cache_read_input_tokens": 8901,
        "cache_creation_input_tokens": 3000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
    }
    write(project(root) / "s1.jsonl", line("m1", usage=usage), line("m2", model=HAIKU, usage=usage))
    await importer(engine, root).scan()
    by_model = {r["model_served"]: r["cost_nanos"] for r in await rows(engine)}
    kinds = {"input": 1234, "output": 567, "cache_read": 8901, "cache_write_5m": 1000, "cache_write_1h": 2000}
    assert by_model[SONNET] == nanos("claude-sonnet-4-5", **kinds)
    assert by_model[HAIKU] == nanos("claude-haiku-4-5", **kinds)


async def test_long_request_priced_by_both_rules(engine: AsyncEngine, root: Path) -> None:
    write(project(root) / "s1.jsonl", line("big", usage={"input_tokens": 250_000, "output_tokens": 4000}))
    await importer(engine, root).scan()
    (row,) = await rows(engine)
    # Anthropic: the whole request above 200k input is billed at the long-context rate
    assert row["cost_nanos"] == nanos("claude-sonnet-4-5", input_200k=250_000, output_200k=4000)
    # ccusage: only the tokens beyond 200k, per kind
    ccusage = nanos("claude-sonnet-4-5", input=200_000, input_200k=50_000, output=4000)
    assert (await detail(engine, "big:req_big"))["ccusage_cost_nanos"] == ccusage


@pytest.mark.parametrize(("mode", "with_cost", "without_cost"), [("auto", 500_000_000, None),
                                                                  ("calculate", None, None),
                                                                  ("display", 500_000_000, 0)])  # fmt: skip
async def test_cost_modes(
    engine: AsyncEngine, root: Path, mode: str, with_cost: int | None, without_cost: int | None
) -> None:
    write(project(root) / "s1.jsonl", line("paid", costUSD=0.5), line("free"))
    await importer(engine, root, cost_mode=mode).scan()
    computed = nanos("claude-sonnet-4-5", input=100, output=10)
    costs = {r["external_id"]: r["cost_nanos"] for r in await rows(engine)}
    assert costs["paid:req_paid"] == (computed if with_cost is None else with_cost)
    assert costs["free:req_free"] == (computed if without_cost is None else without_cost)
    assert (await detail(engine, "paid:req_paid"))["reported_cost_nanos"] == 500_000_000


def test_cost_mode_is_validated(engine: AsyncEngine, root: Path) -> None:
    with pytest.raises(ValueError, match="cost_mode"):
        importer(engine, root, cost_mode="cheap")


async def test_synthetic_lines_cost_nothing(engine: AsyncEngine, root: Path) -> None:
    error = line(
        "err",
        model="<synthetic>",
        usage={"input_tokens": 0, "output_tokens": 0},
        isApiErrorMessage=True,
        apiErrorStatus=529,
    )
    write(project(root) / "s1.jsonl", error)
    await importer(engine, root).scan()
    (row,) = await rows(engine)
    assert (row["cost_nanos"], row["unpriced"]) == (0, False)
    assert (row["status_code"], row["outcome"]) == (529, "error")


async def test_unknown_model_is_unpriced_not_guessed(engine: AsyncEngine, root: Path) -> None:
    write(project(root) / "s1.jsonl", line("m1", model="claude-imaginary-9"))
    await importer(engine, root).scan()
    (row,) = await rows(engine)
    assert (row["cost_nanos"], row["unpriced"]) == (0, True)


async def test_malformed_lines_are_counted_never_fatal(engine: AsyncEngine, root: Path) -> None:
    write(
        project(root) / "s1.jsonl", '{"type":"assistant","message": {broken\n', "[1, 2]\n", line("m1"), "\n"
    )
    write(
        project(root) / "s2.jsonl",
        line("m2", session="s2", ts="not a time"),
        line("m3", session="s2"),
    )
    result = await importer(engine, root).scan()
    assert result.malformed_lines == 3
    assert result.entries_added == 2
    assert result.lines_read == 5


async def test_duplicates_across_files_keep_the_largest_copy(engine: AsyncEngine, root: Path) -> None:
    small = {"input_tokens": 100, "output_tokens": 4}
    large = {"input_tokens": 100, "output_tokens": 98}
    write(
        project(root) / "a.jsonl", line("m1", session="a", usage=small), line("m1", session="a", usage=large)
    )
    write(project(root) / "b.jsonl", line("m1", session="b", usage=small))
    result = await importer(engine, root).scan()
    assert result.entries_added == 1
    (row,) = await rows(engine)
    assert (row["output_tokens"], row["session_id"]) == (98, "a")


async def test_duplicates_across_scans(engine: AsyncEngine, root: Path) -> None:
    scanner = importer(engine, root)
    path = write(project(root) / "a.jsonl", line("m1", usage={"input_tokens": 100, "output_tokens": 4}))
    await scanner.scan()
    (first,) = await rows(engine)
    write(path, line("m1", usage={"input_tokens": 100, "output_tokens": 98}), mode="a")
    result = await scanner.scan()
    assert (result.entries_added, result.entries_replaced, result.lines_read) == (0, 1, 1)
    (second,) = await rows(engine)
    assert second["id"] == first["id"] and second["output_tokens"] == 98
    assert second["cost_nanos"] == nanos("claude-sonnet-4-5", input=100, output=98)
    # a smaller copy in another file, in a later scan (a fresh importer: only the database knows)
    write(project(root) / "b.jsonl", line("m1", session="b", usage={"input_tokens": 1, "output_tokens": 1}))
    result = await importer(engine, root).scan()
    assert (result.entries_added, result.entries_replaced) == (0, 0)
    assert (await rows(engine))[0]["output_tokens"] == 98


async def test_rescan_reads_only_appended_bytes(engine: AsyncEngine, root: Path) -> None:
    scanner = importer(engine, root)
    path = write(project(root) / "a.jsonl", user(), line("m1"), user())
    write(project(root) / "other.jsonl", line("m9", session="other"))
    first = await scanner.scan()
    assert (first.files_read, first.lines_read, first.new_sessions) == (2, 4, {"a", "other"})
    unchanged = await scanner.scan()
    assert (unchanged.files_seen, unchanged.files_read, unchanged.lines_read) == (2, 0, 0)
    write(path, line("m2"), user(), mode="a")
    appended = await scanner.scan()
    assert (appended.files_read, appended.lines_read, appended.entries_added) == (1, 2, 1)
    assert appended.changed_sessions == {"a"} and appended.new_sessions == set()


async def test_partial_trailing_line_waits_for_its_end(engine: AsyncEngine, root: Path) -> None:
    scanner = importer(engine, root)
    whole = line("m2")
    path = write(project(root) / "a.jsonl", line("m1"), whole[:40])
    first = await scanner.scan()
    assert (first.lines_read, first.entries_added, first.malformed_lines) == (1, 1, 0)
    write(path, whole[40:], mode="a")
    second = await scanner.scan()
    assert (second.lines_read, second.entries_added, second.malformed_lines) == (1, 1, 0)


async def test_whole_last_line_without_newline_counts(engine: AsyncEngine, root: Path) -> None:
    write(project(root) / "a.jsonl", line("m1"), line("m2").rstrip("\n"))
    result = await importer(engine, root).scan()
    assert result.entries_added == 2


async def test_truncated_file_is_read_again(engine: AsyncEngine, root: Path) -> None:
    scanner = importer(engine, root)
    path = write(project(root) / "a.jsonl", line("m1"), line("m2"), line("m3"))
    await scanner.scan()
    write(path, line("m4"))
    result = await scanner.scan()
    assert (result.files_read, result.lines_read, result.entries_added) == (1, 1, 1)
    assert len(await rows(engine)) == 4  # spend already recorded stays recorded


async def test_replaced_file_is_read_again(engine: AsyncEngine, root: Path) -> None:
    scanner = importer(engine, root)
    path = write(project(root) / "a.jsonl", line("m1"))
    await scanner.scan()
    # a new file (new inode) moved over the old name, longer than the old one
    replacement = write(project(root) / "tmp.jsonl.new", line("m5"), line("m6"))
    os.replace(replacement, path)
    result = await scanner.scan()
    assert (result.lines_read, result.entries_added) == (2, 2)


async def test_rewritten_in_place_is_detected_by_its_first_bytes(engine: AsyncEngine, root: Path) -> None:
    scanner = importer(engine, root)
    path = write(project(root) / "a.jsonl", line("m1"))
    await scanner.scan()
    inode = path.stat().st_ino
    with path.open("r+") as handle:  # same inode, different head, and longer
        handle.write(line("m7") + line("m8"))
    assert path.stat().st_ino == inode
    result = await scanner.scan()
    assert (result.lines_read, result.entries_added) == (2, 2)


async def test_small_chunks_give_the_same_result(engine: AsyncEngine, root: Path) -> None:
    long_text = "x" * 5000
    write(project(root) / "a.jsonl", user(), line("m1", note=long_text), line("m2"), line("m2"), user())
    result = await importer(engine, root, chunk_bytes=64, batch_rows=1).scan()
    assert (result.lines_read, result.entries_added, result.malformed_lines) == (5, 2, 0)


async def test_three_subagent_layouts(engine: AsyncEngine, root: Path) -> None:
    folder = project(root)
    # 1.0: sidechain lines inline in the session file
    write(
        folder / "s10.jsonl", line("main10", session="s10"), line("side10", session="s10", isSidechain=True)
    )
    # 2.0: agent-<id>.jsonl beside the session files; its lines name the parent session
    write(folder / "s20.jsonl", line("main20", session="s20"))
    write(folder / "agent-abc.jsonl", line("side20", session="s20", isSidechain=True))
    # 2.1: <session>/subagents/agent-<id>.jsonl
    write(folder / "s21.jsonl", line("main21", session="s21"))
    write(folder / "s21" / "subagents" / "agent-def.jsonl", line("side21", session="s21", isSidechain=True))
    files = {f.path.name: f for f in transcript_files([root])}
    assert (files["agent-abc.jsonl"].session_id, files["agent-abc.jsonl"].agent_id) == ("s20", "abc")
    assert (files["agent-def.jsonl"].session_id, files["agent-def.jsonl"].is_subagent) == ("s21", True)
    assert not files["s10.jsonl"].is_subagent
    result = await importer(engine, root).scan()
    assert result.entries_added == 6
    seen = {r["external_id"].split(":")[0]: (r["session_id"], r["is_subagent"]) for r in await rows(engine)}
    assert seen == {
        "main10": ("s10", False),
        "side10": ("s10", True),
        "main20": ("s20", False),
        "side20": ("s20", True),
        "main21": ("s21", False),
        "side21": ("s21", True),
    }


def test_claude_config_dir_lists_several_dirs(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    (one / "projects").mkdir(parents=True)
    (two / "projects").mkdir(parents=True)
    env = {"CLAUDE_CONFIG_DIR": f"{one}, {two / 'projects'},{tmp_path / 'missing'}", "HOME": str(tmp_path)}
    assert claude_roots(environ=env) == [one, two]
    assert claude_roots([str(two)], environ=env) == [two]  # settings win over the environment


def test_default_dirs_are_xdg_and_dot_claude(tmp_path: Path) -> None:
    (tmp_path / ".config" / "claude" / "projects").mkdir(parents=True)
    (tmp_path / ".claude" / "projects").mkdir(parents=True)
    assert claude_roots(environ={"HOME": str(tmp_path)}) == [
        tmp_path / ".config" / "claude",
        tmp_path / ".claude",
    ]
    assert claude_roots(environ={"HOME": str(tmp_path / "nobody")}) == []


async def test_two_config_dirs_import_together(engine: AsyncEngine, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(one / "projects" / "p" / "a.jsonl", line("m1"))
    write(two / "projects" / "p" / "b.jsonl", line("m2", session="b"), line("m1"))
    roots = claude_roots(environ={"CLAUDE_CONFIG_DIR": f"{one},{two}"})
    result = await ClaudeImporter(engine, load_price_table(), roots).scan()
    assert (result.files_seen, result.entries_added) == (2, 2)


async def test_unreadable_file_is_reported_not_fatal(
    engine: AsyncEngine, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = write(project(root) / "bad.jsonl", line("m1"))
    write(project(root) / "good.jsonl", line("m2", session="good"))
    real_open = Path.open

    def guarded(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == bad:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    result = await importer(engine, root).scan()
    assert result.unreadable_files == [str(bad)]
    assert result.entries_added == 1
    monkeypatch.setattr(Path, "open", real_open)
    result = await importer(engine, root).scan()  # readable again: picked up
    assert (result.unreadable_files, result.entries_added) == ([], 1)


async def test_concurrent_scans_are_serialised(engine: AsyncEngine, root: Path) -> None:
    import asyncio

    write(project(root) / "a.jsonl", *(line(f"m{i}") for i in range(50)))
    scanner = importer(engine, root)
    first, second = await asyncio.gather(scanner.scan(), scanner.scan())
    assert first.entries_added + second.entries_added == 50
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ledger)) == 50


def test_raw_insert_lists_every_ledger_column() -> None:
    """The fast SQLite insert names ledger columns itself: it must follow the table."""
    assert set(LEDGER_COLUMNS) == {column.name for column in ledger.columns}


async def test_reported_cost_is_exact(engine: AsyncEngine, root: Path) -> None:
    write(project(root) / "s1.jsonl", line("m1", costUSD=0.1))
    await importer(engine, root).scan()
    assert (await detail(engine, "m1:req_m1"))["reported_cost_nanos"] == 100_000_000


def test_transcripts_listed_in_full_path_order(root: Path) -> None:
    """ccusage's order is the sorted full paths: ``p-b/…`` before ``p/…`` ('-' sorts before '/'),
    which a per-directory walk does not give; deeper nesting belongs to the directory above."""
    projects = root / "projects"
    for relative in ("p/s.jsonl", "p-b/s.jsonl", "p/x/y/deep.jsonl", "p/notes.txt", "top.jsonl"):
        write(projects / relative, "")
    found = [(str(f.path.relative_to(projects)), f.session_id) for f in transcript_files([root])]
    assert found == [("p-b/s.jsonl", "s"), ("p/s.jsonl", "s"), ("p/x/y/deep.jsonl", "y")]
