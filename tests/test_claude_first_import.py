"""A big first import: spooled by the parsing processes, it stores exactly the rows a row-by-row
import stores; and it builds its report's roll-up from the processes' sums. Checked against
the SQL roll-up over the imported ledger rows, for every kind and for zones with DST, half-hour
and 45-minute offsets; sessions the sums cannot place exactly (a response in two files, a
quarter-hour cut by local midnight) are left to SQL and recomputed by the first report."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.test_claude_import import line, user, write
from tollhouse.claude_code import fast_scan, lite, reader, rollups
from tollhouse.claude_code.first_rollups import QUARTER_MS, local_day
from tollhouse.db import sqlite_schema
from tollhouse.pricing import load_price_table

SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-1-20250805"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def responses(session: str, start: datetime, count: int, step_s: int, *, tag: str) -> list[str]:
    """Alternating models, every fifth written twice, a costUSD, an unknown model, an API error."""
    out: list[str] = []
    for n in range(count):
        at = stamp(start + timedelta(seconds=n * step_s))
        usage = {"input_tokens": 10 + n, "output_tokens": 5 + n, "cache_read_input_tokens": 100 * n}
        extra: dict[str, object] = {}
        model = SONNET if n % 2 else OPUS
        if n == 3:
            extra["costUSD"] = 0.125
        if n == 4:
            model = "claude-unknown-9"
        if n == 5:
            model = "<synthetic>"
        if n == 6:
            extra.update(isApiErrorMessage=True, apiErrorStatus=529)
        text = line(f"{tag}_{n}", model=model, session=session, ts=at, usage=usage, **extra)
        out += [user(session), text, text] if n % 5 == 0 else [user(session), text]
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("first") / "claude"
    projects = root / "projects"
    # across UTC midnight and New York's spring-forward (2025-03-09 07:00 UTC)
    write(
        projects / "-a" / "s1.jsonl",
        *responses("s1", datetime(2025, 3, 9, 6, 10, tzinfo=UTC), 40, 97, tag="a"),
    )
    # the same session's subagent (2.1 layout): its groups merge with the main file's
    write(
        projects / "-a" / "s1" / "subagents" / "agent-x.jsonl",
        *responses("s1", datetime(2025, 3, 9, 6, 40, tzinfo=UTC), 12, 300, tag="x"),
    )
    # s2 and s3 share a response: which copy counts is decided after the files are summed
    shared = line(
        "shared", session="s2", ts="2025-06-01T12:00:00.000Z", usage={"input_tokens": 7, "output_tokens": 1}
    )
    bigger = line(
        "shared", session="s3", ts="2025-06-01T12:00:00.000Z", usage={"input_tokens": 9, "output_tokens": 1}
    )
    write(
        projects / "-b" / "s2.jsonl",
        *responses("s2", datetime(2025, 6, 1, 11, 0, tzinfo=UTC), 8, 400, tag="b"),
        shared,
    )
    write(
        projects / "-b" / "s3.jsonl",
        bigger,
        *responses("s3", datetime(2025, 6, 1, 18, 20, tzinfo=UTC), 8, 400, tag="c"),
    )
    # Monrovia was UTC-0:44:30 in 1971: its midnight cuts a quarter-hour in two
    write(
        projects / "-c" / "s4.jsonl",
        *responses("s4", datetime(1971, 6, 1, 0, 30, tzinfo=UTC), 6, 120, tag="d"),
    )
    return root


KINDS = [
    "session",
    "hour",
    "day:UTC",
    "day:America/New_York",
    "day:Asia/Kolkata",
    "day:Asia/Kathmandu",
    "day:Australia/Lord_Howe",
    "day:Africa/Monrovia",
]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_first_import_rollup_equals_the_sql_rollup(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, workers: int
) -> None:
    monkeypatch.setattr(fast_scan, "_COLD_MIN_BYTES", 0)  # the bulk first import, however small
    monkeypatch.setattr(reader, "POOL_MIN_BYTES", 0)
    path = str(tmp_path / "th.db")
    result = fast_scan.scan(
        path,
        [root],
        load_price_table,
        workers=workers,
        create=lambda: sqlite_schema.create(path),
        rollup_kinds=[kind],
    )
    assert result.entries_added == 40 + 12 + 9 + 8 + 6  # "shared" counted once
    conn = lite.connect(path)
    try:
        mark = conn.execute("SELECT dirty_id FROM claude_agg_state WHERE kind = ?", (kind,)).fetchone()
        assert mark is not None  # built by the import, not on first use
        left = {r[0] for r in conn.execute("SELECT session_id FROM claude_dirty WHERE id > ?", (mark[0],))}
        assert left == ({"s2", "s3", "s4"} if kind == "day:Africa/Monrovia" else {"s2", "s3"})
        prebuilt = set(conn.execute("SELECT * FROM claude_agg WHERE kind = ?", (kind,)).fetchall())
        assert {r[0] for r in prebuilt} == {"s1", "s4"} - left

        rollups.refresh(conn, kind)  # the first report: recomputes only the sessions left to SQL
        got = _rollup(conn, kind)
        conn.execute("BEGIN")
        rollups._aggregate(conn, kind, None)  # everything from the ledger, in SQL
        want = _rollup(conn, kind)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    assert got == want
    assert prebuilt <= set(want)


def _import(path: str, root: Path, workers: int) -> list[tuple[object, ...]]:
    fast_scan.scan(path, [root], load_price_table, workers=workers, create=lambda: sqlite_schema.create(path))
    columns = [c for c in lite.LEDGER_COLUMNS if c != "id"]  # ids carry a per-import random part
    conn = lite.connect(path)
    try:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM ledger ORDER BY claude_seq").fetchall()
        ids = conn.execute("SELECT count(DISTINCT id), count(*) FROM ledger").fetchone()
        dirty = {r[0] for r in conn.execute("SELECT session_id FROM claude_dirty")}
    finally:
        conn.close()
    assert ids[0] == ids[1]
    assert dirty == {"s1", "s2", "s3", "s4"}
    return rows


def test_spooled_first_import_stores_what_a_row_by_row_import_stores(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_scan, "_COLD_MIN_BYTES", 0)
    monkeypatch.setattr(reader, "POOL_MIN_BYTES", 0)
    spooled = _import(str(tmp_path / "spooled.db"), root, workers=2)
    monkeypatch.setattr(fast_scan, "_COLD_MIN_BYTES", 1 << 40)  # nothing bulk: row by row
    direct = _import(str(tmp_path / "direct.db"), root, workers=1)
    assert spooled == direct
    assert len(spooled) == 40 + 12 + 9 + 8 + 6
    key = lite.LEDGER_COLUMNS.index("external_id") - 1
    session = lite.LEDGER_COLUMNS.index("session_id") - 1
    shared = [row for row in spooled if row[key] == "shared:req_shared"]
    assert len(shared) == 1 and shared[0][session] == "s3"  # the bigger copy, in s2's place
    assert not list(tmp_path.glob(".claude-import-*"))  # spools removed


def _rollup(conn: sqlite3.Connection, kind: str) -> list[tuple[object, ...]]:
    query = (
        "SELECT * FROM claude_agg WHERE kind = ? ORDER BY session_id, k1, k2, project_dir, cwd, model, fast"
    )
    return conn.execute(query, (kind,)).fetchall()


def test_a_later_import_leaves_the_rollups_to_sql(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_scan, "_COLD_MIN_BYTES", 0)
    path = str(tmp_path / "th.db")
    fast_scan.scan(path, [root], load_price_table, workers=1, create=lambda: sqlite_schema.create(path))
    conn = lite.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM claude_agg_state WHERE kind != '#seq'").fetchone() == (0,)
    finally:
        conn.close()


def test_local_day_of_a_quarter_hour() -> None:
    def quarter(text: str) -> int:
        return int(datetime.fromisoformat(text).timestamp() * 1000) // QUARTER_MS

    utc, kolkata, monrovia = ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Africa/Monrovia")
    day = (datetime(2025, 6, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
    assert local_day(utc, quarter("2025-06-01T23:45:00+00:00")) == day
    assert local_day(kolkata, quarter("2025-06-01T18:15:00+00:00")) == day  # 23:45 local
    assert local_day(kolkata, quarter("2025-06-01T18:30:00+00:00")) == day + 1  # local midnight
    assert local_day(monrovia, quarter("1971-06-01T00:30:00+00:00")) is None  # midnight at 00:44:30 UTC
    assert local_day(monrovia, quarter("1971-06-01T00:45:00+00:00")) is not None
    # New York springs forward at 07:00 UTC, on a quarter-hour boundary: both sides are whole
    new_york = ZoneInfo("America/New_York")
    assert local_day(new_york, quarter("2025-03-09T06:45:00+00:00")) == local_day(
        new_york, quarter("2025-03-09T07:00:00+00:00")
    )
