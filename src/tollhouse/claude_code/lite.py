"""The SQLite fast path: import and report roll-ups with the stdlib ``sqlite3`` module.

A ``tollhouse claude …`` report is a short process, so what it imports and how many rows it
reads decide its time. On a SQLite database this module does the whole job without SQLAlchemy,
asyncio or pydantic: the incremental scan (same cursors, de-duplication and rows as
:mod:`tollhouse.claude_code.importer`, which also calls it for SQLite files) and the roll-ups
reports read (``claude_agg``: per session and model, by UTC hour, by local day per time zone,
by session). Every import appends the sessions it changed to ``claude_dirty``; a roll-up kind
recomputes only those sessions from the ledger's Claude Code rows (source ``claude-code``, one
per de-duplicated response, the ``claude_*`` columns) the next time a report needs it, so a
report after a small append reads a few thousand roll-up rows instead of every response.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tollhouse.claude_code.discovery import TranscriptFile, transcript_files

SOURCE = "claude-code"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
IN_CHUNK = 500


class CostMode:
    AUTO = "auto"
    CALCULATE = "calculate"
    DISPLAY = "display"
    ALL = (AUTO, CALCULATE, DISPLAY)


@dataclass
class ScanResult:
    files_seen: int = 0
    files_read: int = 0
    lines_read: int = 0
    entries_added: int = 0
    entries_replaced: int = 0
    malformed_lines: int = 0
    unreadable_files: list[str] = field(default_factory=list)
    new_sessions: set[str] = field(default_factory=set)
    changed_sessions: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Kept:
    """The copy of a response currently counted: what a later copy is compared with."""

    ledger_id: str
    seq: int
    total: int
    is_sidechain: bool
    session_id: str = ""


@dataclass(slots=True)
class Cursor:
    """How far a transcript file has been read, and how to tell it was truncated or replaced."""

    path: str
    project_dir: str
    session_id: str
    is_subagent: bool
    size: int
    mtime_ns: int
    inode: int
    read_offset: int
    head_hash: str
    head_len: int
    lines: int
    malformed_lines: int

    def row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "project_dir": self.project_dir[:512],
            "session_id": self.session_id[:128],
            "is_subagent": self.is_subagent,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "inode": self.inode,
            "read_offset": self.read_offset,
            "head_hash": self.head_hash,
            "head_len": self.head_len,
            "lines": self.lines,
            "malformed_lines": self.malformed_lines,
            "updated_at": datetime.now(UTC),
        }


# --- shared rules (the SQLAlchemy importer uses them too) ----------------------------------------


def plan(stat: os.stat_result, cursor: Any) -> tuple[int | None, tuple[str, int] | None]:
    """Where to start reading (None: unchanged), and the first bytes a grown file must still have."""
    if cursor is None:
        return 0, None
    if cursor.inode and cursor.inode != stat.st_ino:
        return 0, None  # replaced (a new file under the old name)
    if stat.st_size < cursor.read_offset:
        return 0, None  # truncated
    if stat.st_size == cursor.size and stat.st_mtime_ns == cursor.mtime_ns:
        return None, None
    return cursor.read_offset, (cursor.head_hash, cursor.head_len)


def better(total: int, is_sidechain: bool, kept: Kept) -> bool:
    """The largest token total wins; on a tie the main conversation's copy beats a sidechain's."""
    if total != kept.total:
        return total > kept.total
    return kept.is_sidechain and not is_sidechain


def list_with_stats(roots: Sequence[Path]) -> list[tuple[TranscriptFile, os.stat_result | None]]:
    found: list[tuple[TranscriptFile, os.stat_result | None]] = []
    for file in transcript_files(roots):
        text = str(file.path)  # once: the Path keeps it, and callers look cursors up by it
        try:
            stat = os.stat(text)
        except OSError:
            continue  # vanished between listing and stat
        found.append((file, stat if os.access(text, os.R_OK) else None))
    return found


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
SEQ_KIND = "#seq"  # the claude_agg_state row holding the last seq given out
# Every ledger column, in the order the fast insert names them (a test checks it follows the table).
LEDGER_COLUMNS = (
    "id", "request_id", "created_at", "project_id", "api_key_id", "source", "route", "provider",
    "model_requested", "model_served", "stream", "status_code", "outcome", "input_tokens",
    "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens",
    "reasoning_tokens", "cost_nanos", "saved_cost_nanos", "tokens_saved", "cached", "unpriced",
    "price_version", "service_tier", "latency_ms", "ttft_ms", "upstream_request_id", "error_code",
    "error_message", "session_id", "is_subagent", "external_id", "claude_seq", "claude_ts_ms",
    "claude_project_dir", "claude_cwd", "claude_fast", "claude_reported_nanos", "claude_calc_nanos",
    "claude_ccusage_nanos", "claude_unpriced", "claude_ccusage_unpriced",
)  # fmt: skip
# The parameters of an imported row, as ``line_rows.parse_rows`` builds them; the ledger id is made
# from the seq inside the insert (see ``Ids``), a replacement's UPDATE appends the id.
ROW_PARAMS = (
    "seq", "ts_ms", "created_at", "cwd", "project_id", "project_dir", "session_id", "model", "error",
    "status_code", "input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "fast",
    "reported", "calc", "ccusage", "unpriced", "ccusage_unpriced", "is_subagent", "key",
)  # fmt: skip
# Flags are passed as the ints 0 and 1 and a missing costUSD as this number: sqlite3 binds exact
# ints and strings directly but looks up an adapter for every bool and None.
NO_REPORTED_COST = -(1 << 62) - 1
SEQ, SESSION = ROW_PARAMS.index("seq"), ROW_PARAMS.index("session_id")
_P = {name: f"?{n}" for n, name in enumerate(ROW_PARAMS, 1)}
SEQ_STRIDE = 1 << 24  # seq numbers set aside per file read in one scan (first-seen order, gaps allowed)


@dataclass(frozen=True, slots=True)
class Ids:
    """One scan's ledger ids: ``new_id("log")``'s format (time in base 36, 16 hex digits), the
    digits a per-scan random number plus the row's seq: unique, ascending, computable in SQL."""

    head: str
    noise: int

    @classmethod
    def new(cls) -> Ids:
        millis = int(time.time() * 1000)
        head = ""
        for _ in range(9):
            millis, rem = divmod(millis, 36)
            head = _ALPHABET[rem] + head
        return cls(head, int.from_bytes(os.urandom(8)) >> 3)  # < 2**61: the sum stays an int64

    def of(self, seq: int) -> str:
        return f"log_{self.head}{self.noise + seq:016x}"

    def sql(self, seq: str) -> str:
        return f"printf('log_{self.head}%016llx', {self.noise} + {seq})"


def _ledger_values(cost_mode: str, price_version: str, ids: Ids) -> dict[str, str]:
    """SQL for each ledger column of an imported row: the constants inline (fewer values to
    bind), the id and the cost mode's choices as expressions over the parameters."""
    p = _P
    if cost_mode == CostMode.CALCULATE:
        cost, unpriced = p["calc"], p["unpriced"]
    else:
        fallback = "0" if cost_mode == CostMode.DISPLAY else p["calc"]
        cost = f"CASE WHEN {p['reported']} = {NO_REPORTED_COST} THEN {fallback} ELSE {p['reported']} END"
        unpriced = f"({p['unpriced']} AND {p['reported']} = {NO_REPORTED_COST})"
    reported = f"nullif({p['reported']}, {NO_REPORTED_COST})"
    version = "'" + price_version.replace("'", "''") + "'"
    values = {
        "id": ids.sql(p["seq"]), "request_id": "NULL", "created_at": p["created_at"],
        "project_id": p["project_id"], "api_key_id": "NULL", "source": f"'{SOURCE}'", "route": f"'{SOURCE}'",
        "provider": "'anthropic'", "model_requested": p["model"], "model_served": p["model"], "stream": "0",
        "status_code": p["status_code"],
        "outcome": f"CASE WHEN {p['error']} THEN 'error' ELSE 'ok' END", "input_tokens": p["input"],
        "cache_read_tokens": p["cache_read"], "cache_write_5m_tokens": p["cache_write_5m"],
        "cache_write_1h_tokens": p["cache_write_1h"], "output_tokens": p["output"], "reasoning_tokens": "0",
        "cost_nanos": cost, "saved_cost_nanos": "0", "tokens_saved": "0", "cached": "0", "unpriced": unpriced,
        "price_version": version, "service_tier": "NULL", "latency_ms": "NULL", "ttft_ms": "NULL",
        "upstream_request_id": "NULL", "error_code": f"CASE WHEN {p['error']} THEN 'api_error' END",
        "error_message": "NULL", "session_id": p["session_id"], "is_subagent": p["is_subagent"],
        "external_id": p["key"], "claude_seq": p["seq"], "claude_ts_ms": p["ts_ms"],
        "claude_project_dir": p["project_dir"], "claude_cwd": p["cwd"], "claude_fast": p["fast"],
        "claude_reported_nanos": reported, "claude_calc_nanos": p["calc"],
        "claude_ccusage_nanos": p["ccusage"], "claude_unpriced": p["unpriced"],
        "claude_ccusage_unpriced": p["ccusage_unpriced"],
    }  # fmt: skip
    assert tuple(values) == LEDGER_COLUMNS
    return values


# Columns a replacement leaves alone (identity, where the key lives, first-seen order).
LEDGER_KEEP = frozenset({"id", "source", "external_id", "route", "claude_seq"})


def insert_sql(cost_mode: str, price_version: str, ids: Ids) -> str:
    values = _ledger_values(cost_mode, price_version, ids)
    # Names and expressions come from the constants above; the version is quoted.
    return f"INSERT INTO ledger ({', '.join(values)}) VALUES ({', '.join(values.values())})"  # noqa: S608


def update_sql(cost_mode: str, price_version: str) -> str:
    """Parameters: a row's (with the kept copy's seq), then the kept copy's ledger id."""
    values = _ledger_values(cost_mode, price_version, Ids("", 0))
    sets = ", ".join(f"{c} = {v}" for c, v in values.items() if c not in LEDGER_KEEP)
    where = f"id = ?{len(ROW_PARAMS) + 1} AND claude_seq = {_P['seq']} AND external_id = {_P['key']}"
    return f"UPDATE ledger SET {sets} WHERE {where}"  # noqa: S608


# --- change marks: which sessions changed, how far each roll-up kind has folded them in -------


def changed_top(conn: sqlite3.Connection) -> int:
    """The newest ``claude_dirty`` id (0 when none)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM claude_dirty").fetchone()[0])


def mark_changed(conn: sqlite3.Connection, sessions: Iterable[str]) -> None:
    conn.executemany("INSERT INTO claude_dirty (session_id) VALUES (?)", [(s,) for s in sorted(sessions)])


def mark(conn: sqlite3.Connection, kind: str) -> int | None:
    """A roll-up kind's mark (the last ``claude_dirty`` id it folded in; for ``SEQ_KIND`` the last
    seq given out), None when it has none yet."""
    row = conn.execute("SELECT dirty_id FROM claude_agg_state WHERE kind = ?", (kind,)).fetchone()
    return int(row[0]) if row is not None else None


def set_mark(conn: sqlite3.Connection, kind: str, value: int) -> None:
    conn.execute("INSERT OR REPLACE INTO claude_agg_state (kind, dirty_id) VALUES (?, ?)", (kind, value))


# --- connection ----------------------------------------------------------------------------------


def sqlite_path(url: str) -> str | None:
    """The file behind a ``sqlite…:///path`` URL (None for memory databases and other engines)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    return path if path and path != ":memory:" and "mode=memory" not in url else None


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(f"PRAGMA threads={min(os.cpu_count() or 1, 4)}")  # helpers for big sorts (roll-ups)
    return conn


def schema_revision(path: str) -> str | None:
    if not Path(path).exists():
        return None
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None
