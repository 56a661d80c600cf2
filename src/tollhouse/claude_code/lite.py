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

import contextlib
import gc
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tollhouse.claude_code.discovery import TranscriptFile, transcript_files

if TYPE_CHECKING:
    import multiprocessing

    from tollhouse.claude_code.parser import Pricer
    from tollhouse.pricing import PriceTable

SOURCE = "claude-code"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_IN_CHUNK = 500
_POOL_MIN_BYTES = 32 * 1024 * 1024  # below this a process pool costs more than it saves
_COLD_MIN_BYTES = 32 * 1024 * 1024  # a first import this big runs as one bulk transaction
_GROUP_BYTES = 2 * 1024 * 1024  # files per pool job


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
        try:
            stat = os.stat(file.path)
        except OSError:
            continue  # vanished between listing and stat
        found.append((file, stat if os.access(file.path, os.R_OK) else None))
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
# The parameters of an imported row, as ``parser.parse_rows`` builds them; the ledger id is made
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


# --- the scan ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cursor:
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


@dataclass(slots=True)
class _FileRead:
    """Everything read from one file: its rows (see ``parser.FileRows``) and the new cursor values."""

    rows: list[tuple[int, bool, tuple[Any, ...]]]
    lines: int
    malformed: int
    offset: int
    head: bytes
    fresh: bool
    session: str
    error: str | None = None


def read_file(
    file: TranscriptFile,
    start: int,
    expect_head: tuple[str, int] | None,
    pricer: Pricer,
    chunk_bytes: int,
    seq0: int,
) -> _FileRead:
    """Parse a file from ``start``; its rows are numbered from ``seq0`` (see ``parser.FileRows``)."""
    from tollhouse.claude_code.parser import FileRows, _path_tag, parse_rows, read_span

    offset, head, fresh = start, b"", start == 0
    out = FileRows(seq0=seq0)
    tag = _path_tag(file.path)
    try:
        while True:
            span = read_span(file, offset, max_bytes=chunk_bytes, expect_head=expect_head)
            expect_head = None
            if span.restarted or span.head:
                offset, head, fresh = 0, span.head, True
                if span.restarted:
                    out = FileRows(seq0=seq0)
            parse_rows(span.data, offset, file, pricer, tag, out)
            offset += len(span.data)
            if span.eof:
                break
    except OSError as exc:
        return _FileRead([], 0, 0, start, b"", False, file.session_id, error=str(exc))
    session = file.session_id or out.line_session_id or ""
    return _FileRead(out.rows, out.lines, out.malformed, offset, head, fresh, session)


class _Import:
    def __init__(self, pricer: Pricer, cost_mode: str, price_version: str, batch_rows: int) -> None:
        self.conn: sqlite3.Connection | None = None  # see ``open``
        self.pricer = pricer
        self.batch_rows = batch_rows
        self.ids = Ids.new()
        self.insert_sql = insert_sql(cost_mode, price_version, self.ids)
        self.update_sql = update_sql(cost_mode, price_version)
        self.result = ScanResult()
        # key -> the copy counted: this scan's row (total, is_sidechain, params) or one in the database
        self.kept: dict[str, tuple[int, bool, tuple[Any, ...]] | Kept] = {}
        self.seq = 0  # the last seq given out (files read get seq ranges above)
        self.db_empty = True
        self.placed: list[tuple[int, bool, tuple[Any, ...]]] = []  # see ``parser.FileRows``
        self.cursors: list[_Cursor] = []
        self.bulk = False

    def open(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.seq = last_seq(conn)
        self.db_empty = self.seq == 0

    def flush(self) -> None:
        placed, self.placed = self.placed, []
        cursors, self.cursors = self.cursors, []
        if not placed and not cursors:
            return
        conn = self.conn
        assert conn is not None
        kept_copies = self.kept
        if not self.db_empty:
            unknown = list(dict.fromkeys(p[2][-1] for p in placed if p[2][-1] not in kept_copies))
            for start in range(0, len(unknown), _IN_CHUNK):
                part = unknown[start : start + _IN_CHUNK]
                query = (
                    "SELECT external_id, id, claude_seq, input_tokens + output_tokens + cache_read_tokens"  # noqa: S608
                    " + cache_write_5m_tokens + cache_write_1h_tokens, is_subagent, session_id FROM ledger"
                    f" WHERE source = '{SOURCE}' AND external_id IN ({', '.join('?' * len(part))})"
                )
                for key, ledger_id, seq, total, side, session in conn.execute(query, part):
                    kept_copies[key] = Kept(ledger_id, int(seq or 0), int(total), bool(side), session or "")
        inserts: dict[str, tuple[Any, ...]] = {}
        replacements: dict[str, tuple[Any, ...]] = {}
        dirty: set[str] = set()
        top = 0
        for row in placed:
            params = row[2]
            key = params[-1]
            kept = kept_copies.get(key)
            if kept is None:  # the common case: a response not seen before
                kept_copies[key] = inserts[key] = row
                dirty.add(params[SESSION])
                continue
            if isinstance(kept, Kept):
                facts = kept
            else:
                facts = Kept(self.ids.of(kept[2][SEQ]), kept[2][SEQ], kept[0], kept[1], kept[2][SESSION])
            if not better(row[0], row[1], facts):
                continue
            row = (row[0], row[1], (facts.seq, *params[1:]))
            if key in inserts:
                inserts[key] = row
            else:
                replacements[key] = row
            kept_copies[key] = row if not isinstance(kept, Kept) else Kept(
                kept.ledger_id, kept.seq, row[0], row[1], params[SESSION]
            )  # fmt: skip
            if facts.session_id:
                dirty.add(facts.session_id)
            dirty.add(params[SESSION])
        for row in inserts.values():
            top = max(top, row[2][SEQ])
        self.result.entries_added += len(inserts)
        self.result.entries_replaced += len(replacements)
        if not self.bulk:
            conn.execute("BEGIN IMMEDIATE")
        try:
            self._write(
                [r[2] for r in inserts.values()],
                [(*r[2], self._kept_id(k, r)) for k, r in replacements.items()],
                dirty,
                cursors,
                top,
            )
        except BaseException:
            if not self.bulk:
                conn.execute("ROLLBACK")
            raise
        if not self.bulk:
            conn.execute("COMMIT")

    def _kept_id(self, key: str, row: tuple[Any, ...]) -> str:
        kept = self.kept[key]
        return kept.ledger_id if isinstance(kept, Kept) else self.ids.of(row[2][SEQ])

    def _write(
        self,
        inserts: list[tuple[Any, ...]],
        replacements: list[tuple[Any, ...]],
        dirty: set[str],
        cursors: list[_Cursor],
        seq: int,
    ) -> None:
        conn = self.conn
        assert conn is not None
        if inserts:
            conn.executemany(self.insert_sql, inserts)
            if seq > self.seq:
                self.seq = seq
                conn.execute(
                    "INSERT OR REPLACE INTO claude_agg_state (kind, dirty_id) VALUES (?, ?)", (SEQ_KIND, seq)
                )
        if replacements:
            conn.executemany(self.update_sql, replacements)
        if dirty:
            conn.executemany(
                "INSERT INTO claude_dirty (session_id) VALUES (?)", [(s,) for s in sorted(dirty)]
            )
        if cursors:
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.executemany(
                "INSERT OR REPLACE INTO claude_files (path, project_dir, session_id, is_subagent, size,"
                " mtime_ns, inode, read_offset, head_hash, head_len, lines, malformed_lines, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.path, c.project_dir[:512], c.session_id[:128], c.is_subagent, c.size, c.mtime_ns,
                     c.inode, c.read_offset, c.head_hash, c.head_len, c.lines, c.malformed_lines, now)
                    for c in cursors
                ],
            )  # fmt: skip

    def add_file(
        self,
        file: TranscriptFile,
        stat: os.stat_result,
        cursor: _Cursor | None,
        read: _FileRead,
        known_sessions: set[str],
    ) -> None:
        from tollhouse.claude_code.parser import HEAD_BYTES, fingerprint

        result = self.result
        if read.error is not None:
            result.unreadable_files.append(str(file.path))
            return
        self.placed.extend(read.rows)
        result.files_read += 1
        result.lines_read += read.lines
        result.malformed_lines += read.malformed
        session = read.session or file.path.stem
        if read.lines:
            result.changed_sessions.add(session)
            if session not in known_sessions:
                result.new_sessions.add(session)
        if read.fresh or cursor is None:
            head_hash, head_len = fingerprint(read.head[: min(HEAD_BYTES, read.offset)])
        else:
            head_hash, head_len = cursor.head_hash, cursor.head_len
        keep = not (read.fresh or cursor is None)
        self.cursors.append(
            _Cursor(
                str(file.path), file.project_dir, session, file.is_subagent, stat.st_size, stat.st_mtime_ns,
                stat.st_ino, read.offset, head_hash, head_len,
                read.lines + (cursor.lines if keep and cursor else 0),
                read.malformed + (cursor.malformed_lines if keep and cursor else 0),
            )
        )  # fmt: skip
        if len(self.placed) >= self.batch_rows:
            self.flush()


def load_cursors(conn: sqlite3.Connection) -> dict[str, _Cursor]:
    query = (
        "SELECT path, project_dir, session_id, is_subagent, size, mtime_ns, inode, read_offset, head_hash,"
        " head_len, lines, malformed_lines FROM claude_files"
    )
    return {row[0]: _Cursor(*row) for row in conn.execute(query)}


def scan(
    path: str,
    roots: Sequence[Path],
    prices: Callable[[], PriceTable],
    *,
    cost_mode: str = "auto",
    chunk_bytes: int = 8 * 1024 * 1024,
    batch_rows: int = 5000,
    workers: int | None = None,
    create: Callable[[], None] | None = None,
) -> ScanResult:
    """Bring the SQLite database at ``path`` up to date with the transcripts under ``roots``.

    ``prices`` is called only when something has to be read. ``create``, when given, makes the
    database (which does not exist yet, so nothing has been read): it runs while the parsing
    processes already work. A first import bigger than a few tens of megabytes is one
    transaction (atomic: a crash leaves nothing half-imported), written with the rollback
    journal instead of the WAL (the data is written once, not twice), with the ledger's
    secondary indexes built after the rows and, on a multi-core machine with no other threads
    running, parsed in a process pool.
    """
    files = list_with_stats(roots)
    # Hundreds of thousands of long-lived tuples: cyclic collection only costs here. Only on the
    # main thread (the CLI): the switch is process-wide, a server's other threads keep theirs.
    collecting = gc.isenabled() and threading.current_thread() is threading.main_thread()
    if collecting:
        gc.disable()
    conn: sqlite3.Connection | None = None
    reader: _Reader | None = None
    try:
        if create is None:
            conn = connect(path)
            cursors = load_cursors(conn)
        else:
            cursors = {}
        known_sessions = {c.session_id for c in cursors.values() if c.session_id}
        result = ScanResult(files_seen=len(files))
        todo: list[tuple[TranscriptFile, os.stat_result, _Cursor | None, int, tuple[str, int] | None]] = []
        for file, stat in files:
            if stat is None:
                result.unreadable_files.append(str(file.path))
                continue
            cursor = cursors.get(str(file.path))
            start, expect = plan(stat, cursor)
            if start is not None:
                todo.append((file, stat, cursor, start, expect))
        if not todo:
            if create is not None:
                create()
            return result
        from tollhouse.claude_code.parser import Pricer

        table = prices()
        pricer = Pricer(table)
        pending = sum(max(stat.st_size - start, 0) for _, stat, _, start, _ in todo)
        base = 0 if conn is None else last_seq(conn)
        job = _Import(pricer, cost_mode, table.version, batch_rows)
        job.result = result
        reader = _Reader(todo, pricer, chunk_bytes, pending, workers, base)
        if conn is None:
            assert create is not None
            create()  # while the workers parse
            conn = connect(path)
        job.open(conn)
        if job.seq != base:
            raise RuntimeError("the database changed while it was being created")
        indexes = _bulk_begin(job) if job.db_empty and pending >= _COLD_MIN_BYTES else []
        try:
            for (file, stat, cursor, _, _), read in zip(todo, reader, strict=True):
                job.add_file(file, stat, cursor, read, known_sessions)
            job.flush()
            for sql in indexes:
                conn.execute(sql)
        except BaseException:
            if job.bulk:
                conn.execute("ROLLBACK")
                _bulk_end(job)
            raise
        if job.bulk:
            conn.execute("COMMIT")
            _bulk_end(job)
        return job.result
    finally:
        if reader is not None:
            reader.close()
        if conn is not None:
            conn.close()
        if collecting:
            gc.enable()


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT dirty_id FROM claude_agg_state WHERE kind = ?", (SEQ_KIND,)).fetchone()
    return int(row[0]) if row else 0


def _bulk_begin(job: _Import) -> list[str]:
    """Start the one-transaction first import; the ledger's secondary indexes are dropped inside
    it and rebuilt at its end (sorting once is cheaper than 250k scattered index inserts).
    Returns the statements that rebuild them."""
    conn = job.conn
    assert conn is not None
    with contextlib.suppress(sqlite3.OperationalError):  # stays WAL while others have the file open
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MB while it lasts
    conn.execute("BEGIN IMMEDIATE")
    job.bulk = True
    job.batch_rows = max(job.batch_rows, 20_000)
    found = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in found:
        conn.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def _bulk_end(job: _Import) -> None:
    conn = job.conn
    assert conn is not None
    job.bulk = False
    conn.execute("PRAGMA cache_size=-2000")
    conn.execute("PRAGMA synchronous=NORMAL")
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA journal_mode=WAL")


class _Reader:
    """Every file's read, in order; file n's rows are numbered from ``base_seq + n * SEQ_STRIDE + 1``.

    With a pool, files go in groups of a few megabytes; forked worker k parses groups k,
    k + count, … and queues each result as soon as it is done. The results are read in this (the
    only) thread: no result-handling thread contends for the GIL that sqlite3 releases and
    retakes per row. The workers start at construction.
    """

    def __init__(
        self,
        todo: Sequence[tuple[TranscriptFile, os.stat_result, Any, int, tuple[str, int] | None]],
        pricer: Pricer,
        chunk_bytes: int,
        pending: int,
        workers: int | None,
        base_seq: int,
    ) -> None:
        self.jobs = [
            (file, start, expect, chunk_bytes, base_seq + n * SEQ_STRIDE + 1)
            for n, (file, _, _, start, expect) in enumerate(todo)
        ]
        self.pricer = pricer
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.groups: list[list[tuple[TranscriptFile, int, tuple[str, int] | None, int, int]]] = []
        count = workers if workers is not None else (os.cpu_count() or 1)
        use_pool = (
            count > 1
            and pending >= _POOL_MIN_BYTES
            and len(todo) > 1
            and threading.active_count() == 1  # forking a threaded process is unsafe
            and hasattr(os, "fork")
        )
        if not use_pool:
            return
        import multiprocessing

        size = _GROUP_BYTES
        for job, (_, stat, _, start, _) in zip(self.jobs, todo, strict=True):
            if size >= _GROUP_BYTES:
                self.groups.append([])
                size = 0
            self.groups[-1].append(job)
            size += max(stat.st_size - start, 0)
        context = multiprocessing.get_context("fork")
        self.results: multiprocessing.Queue[tuple[int, list[_FileRead] | str]] = context.Queue()
        self.procs = [
            context.Process(
                target=_worker, args=(self.groups[k::count], k, count, pricer, self.results), daemon=True
            )
            for k in range(count)
        ]
        for proc in self.procs:
            proc.start()

    def __iter__(self) -> Iterator[_FileRead]:
        if not self.procs:
            for job in self.jobs:
                yield read_file(*job[:3], self.pricer, *job[3:])
            return
        import queue

        ready: dict[int, list[_FileRead] | str] = {}
        for number in range(len(self.groups)):
            while number not in ready:
                try:
                    at, reads = self.results.get(timeout=1.0)
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in self.procs):
                        raise RuntimeError("a transcript parsing process died") from None
                    continue
                ready[at] = reads
            reads = ready.pop(number)
            if isinstance(reads, str):
                raise RuntimeError(f"parsing transcripts failed: {reads}")
            yield from reads

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        if self.procs:
            self.results.close()
        self.procs = []


def _worker(
    groups: list[list[tuple[TranscriptFile, int, tuple[str, int] | None, int, int]]],
    first: int,
    step: int,
    pricer: Pricer,
    results: multiprocessing.Queue[tuple[int, list[_FileRead] | str]],
) -> None:
    """A forked parsing process: its share of the groups, each result queued as it is done (the
    queue's feeder thread sends while the next group is parsed)."""
    gc.disable()  # lives for one scan
    for n, group in enumerate(groups):
        number = first + n * step
        try:
            reads: list[_FileRead] | str = [read_file(f, s, e, pricer, c, q) for f, s, e, c, q in group]
        except Exception as exc:
            reads = f"{type(exc).__name__}: {exc}"
        results.put((number, reads))
        if isinstance(reads, str):
            break
    results.close()
    results.join_thread()


# --- roll-ups ------------------------------------------------------------------------------------

AGG_VALUES = (
    "n", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "c_calc",
    "c_ccusage", "c_display", "c_auto", "c_auto_ccusage", "m_calc", "m_calc_ccusage", "m_auto",
    "m_auto_ccusage", "min_seq", "min_ts", "max_ts",
)  # fmt: skip
_TOKENS = "(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)"
_AGG_SELECT = (
    "count(*), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens),"
    " sum(calc_cost_nanos), sum(ccusage_cost_nanos), sum(coalesce(reported_cost_nanos, 0)),"
    " sum(coalesce(reported_cost_nanos, calc_cost_nanos)),"
    " sum(coalesce(reported_cost_nanos, ccusage_cost_nanos)),"
    f" sum(CASE WHEN unpriced AND {_TOKENS} > 0 THEN 1 ELSE 0 END),"
    f" sum(CASE WHEN ccusage_unpriced AND {_TOKENS} > 0 THEN 1 ELSE 0 END),"
    f" sum(CASE WHEN unpriced AND {_TOKENS} > 0 AND reported_cost_nanos IS NULL THEN 1 ELSE 0 END),"
    f" sum(CASE WHEN ccusage_unpriced AND {_TOKENS} > 0 AND reported_cost_nanos IS NULL THEN 1 ELSE 0 END),"
    " min(seq), min(ts_ms), max(ts_ms)"
)
_FULL_REBUILD_SESSIONS = 400
# Imported responses under the names the roll-ups use (SQLite flattens this into each query;
# `+source`: not by the (source, external_id) index — by session, or one sequential pass).
_ENTRIES = (
    "(SELECT session_id, claude_seq AS seq, claude_ts_ms AS ts_ms, claude_project_dir AS project_dir,"
    " claude_cwd AS cwd, model_served AS model, claude_fast AS fast, input_tokens, output_tokens,"
    " cache_write_5m_tokens + cache_write_1h_tokens AS cache_creation_tokens, cache_read_tokens,"
    " claude_reported_nanos AS reported_cost_nanos, claude_calc_nanos AS calc_cost_nanos,"
    " claude_ccusage_nanos AS ccusage_cost_nanos, claude_unpriced AS unpriced,"
    " claude_ccusage_unpriced AS ccusage_unpriced FROM ledger WHERE +source = 'claude-code')"
)


def zone_offsets(zone: ZoneInfo, low_ms: int, high_ms: int) -> list[tuple[int, int]]:
    """[(until_ms, offset_ms)]: the zone's UTC offset for instants before each ``until``."""

    def offset(ms: int) -> int:
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone)
        delta = moment.utcoffset()
        return int(delta.total_seconds() * 1000) if delta is not None else 0

    pieces: list[tuple[int, int]] = []
    step = 3_600_000
    current = offset(low_ms)
    at = low_ms
    while at < high_ms:
        nxt = min(at + step, high_ms)
        if offset(nxt) != current:
            lo, hi = at, nxt  # the change happened in (lo, hi]: find the first ms with the new offset
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == current else (lo, mid)
            pieces.append((hi, current))
            current = offset(hi)
        at = nxt
    pieces.append((high_ms + 1, current))
    return pieces


def _day_sql(zone: ZoneInfo, low: int, high: int) -> str:
    pieces = zone_offsets(zone, low, high)
    if len(pieces) == 1:
        return f"(ts_ms + {int(pieces[0][1])}) / {DAY_MS}"
    arms = " ".join(f"WHEN ts_ms < {int(until)} THEN {int(off)}" for until, off in pieces[:-1])
    return f"(ts_ms + CASE {arms} ELSE {int(pieces[-1][1])} END) / {DAY_MS}"


def _keys_sql(
    kind: str, conn: sqlite3.Connection, where: str, params: Sequence[Any]
) -> tuple[str, str] | None:
    if kind == "session":
        return "0", "0"
    if kind == "hour":
        return f"ts_ms / {HOUR_MS}", f"CASE WHEN ts_ms % {HOUR_MS} = 0 THEN 1 ELSE 0 END"
    zone = ZoneInfo(kind.removeprefix("day:"))
    low, high = conn.execute(f"SELECT min(ts_ms), max(ts_ms) FROM {_ENTRIES} {where}", params).fetchone()  # noqa: S608
    if low is None:
        return None
    return _day_sql(zone, int(low), int(high)), "0"


def _aggregate(conn: sqlite3.Connection, kind: str, sessions: Sequence[str] | None) -> None:
    where, params = "", tuple[str, ...]()
    if sessions is not None:
        where = f"WHERE session_id IN ({', '.join('?' * len(sessions))})"
        params = tuple(sessions)
        delete = f"DELETE FROM claude_agg WHERE kind = ? AND {where.removeprefix('WHERE ')}"  # noqa: S608
        conn.execute(delete, (kind, *params))
    else:
        conn.execute("DELETE FROM claude_agg WHERE kind = ?", (kind,))
    keys = _keys_sql(kind, conn, where, params)
    if keys is None:
        return
    k1, k2 = keys
    conn.execute(
        "INSERT INTO claude_agg (session_id, kind, k1, k2, project_dir, cwd, model, fast,"  # noqa: S608
        f" {', '.join(AGG_VALUES)})"
        f" SELECT session_id, ?, {k1} AS g1, {k2} AS g2, project_dir, coalesce(cwd, '') AS gc,"
        f" coalesce(model, '') AS gm, fast, {_AGG_SELECT} FROM {_ENTRIES} {where}"
        " GROUP BY session_id, g1, g2, project_dir, gc, gm, fast",
        (kind, *params),
    )


def refresh(conn: sqlite3.Connection, kind: str) -> None:
    """Fold the sessions changed since this roll-up kind was last brought up to date."""
    top = int(conn.execute("SELECT coalesce(max(id), 0) FROM claude_dirty").fetchone()[0])
    row = conn.execute("SELECT dirty_id FROM claude_agg_state WHERE kind = ?", (kind,)).fetchone()
    if row is not None and int(row[0]) >= top:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        top = int(conn.execute("SELECT coalesce(max(id), 0) FROM claude_dirty").fetchone()[0])
        row = conn.execute("SELECT dirty_id FROM claude_agg_state WHERE kind = ?", (kind,)).fetchone()
        if row is None:
            _aggregate(conn, kind, None)
        elif int(row[0]) < top:
            changed = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT session_id FROM claude_dirty WHERE id > ? AND id <= ?",
                    (int(row[0]), top),
                )
            ]
            if len(changed) > _FULL_REBUILD_SESSIONS:
                _aggregate(conn, kind, None)
            else:
                for start in range(0, len(changed), _IN_CHUNK):
                    _aggregate(conn, kind, changed[start : start + _IN_CHUNK])
        conn.execute("INSERT OR REPLACE INTO claude_agg_state (kind, dirty_id) VALUES (?, ?)", (kind, top))
        # keep the newest row: ids must keep growing past every kind's mark
        conn.execute(
            "DELETE FROM claude_dirty WHERE id <"
            " (SELECT min(dirty_id) FROM claude_agg_state WHERE kind != ?)",
            (SEQ_KIND,),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def cost_sql(mode: str, tier_rule: str) -> str:
    ccusage = tier_rule == "ccusage"
    if mode == "calculate":
        return "c_ccusage" if ccusage else "c_calc"
    if mode == "display":
        return "c_display"
    return "c_auto_ccusage" if ccusage else "c_auto"


def missing_sql(mode: str, tier_rule: str) -> str:
    ccusage = tier_rule == "ccusage"
    if mode == "display":
        return "0"
    if mode == "calculate":
        return (
            "CASE WHEN m_calc_ccusage > 0 THEN 1 ELSE 0 END"
            if ccusage
            else "CASE WHEN m_calc > 0 THEN 1 ELSE 0 END"
        )
    return (
        "CASE WHEN m_auto_ccusage > 0 THEN 1 ELSE 0 END"
        if ccusage
        else "CASE WHEN m_auto > 0 THEN 1 ELSE 0 END"
    )


def rollup_query(
    conn: sqlite3.Connection,
    kind: str,
    keys: Sequence[str],
    extra: Sequence[str],
    *,
    mode: str,
    tier_rule: str,
    project: str | None,
) -> list[tuple[Any, ...]]:
    """``keys``, model, fast, the five sums, first seq, missing flag, then ``extra`` per group,
    in the shape the SQLAlchemy report queries return."""
    refresh(conn, kind)
    where, params = "WHERE kind = ?", [kind]
    if project:
        where += " AND (project_dir = ? OR cwd = ?)"
        params += [project, project]
    columns = ", ".join(keys)
    select = (
        f"SELECT {columns}, nullif(model, ''), fast, sum(input_tokens), sum(output_tokens),"  # noqa: S608
        f" sum(cache_creation_tokens), sum(cache_read_tokens), sum({cost_sql(mode, tier_rule)}),"
        " min(min_seq),"
        f" max({missing_sql(mode, tier_rule)}){''.join(', ' + e for e in extra)}"
        f" FROM claude_agg {where} GROUP BY {columns}, model, fast"
    )
    return conn.execute(select, params).fetchall()
