"""The SQLite fast path: import and report roll-ups with the stdlib ``sqlite3`` module.

A ``tollhouse claude …`` report is a short process, so what it imports and how many rows it
reads decide its time. On a SQLite database this module does the whole job without SQLAlchemy,
asyncio or pydantic: the incremental scan (same cursors, de-duplication and rows as
:mod:`tollhouse.claude_code.importer`, which also calls it for SQLite files) and the roll-ups
reports read (``claude_agg``: per session and model, by UTC hour, by local day per time zone,
by session). Every import appends the sessions it changed to ``claude_dirty``; a roll-up kind
recomputes only those sessions from ``claude_entries`` the next time a report needs it, so a
report after a small append reads a few thousand roll-up rows instead of every response.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tollhouse.claude_code.discovery import TranscriptFile, transcript_files

if TYPE_CHECKING:
    from tollhouse.claude_code.parser import Entry, Pricer
    from tollhouse.pricing import PriceTable

SOURCE = "claude-code"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_IN_CHUNK = 500
_POOL_MIN_BYTES = 32 * 1024 * 1024  # below this a process pool costs more than it saves
_COLD_MIN_BYTES = 32 * 1024 * 1024  # a first import this big runs as one bulk transaction


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


def ledger_ids(count: int, start: int = 0, noise: int | None = None) -> list[str]:
    """``new_id("log")``'s format (time in base 36, then 16 hex digits) for a whole batch: one
    clock read, 32 random bits, then a counter, so a batch's ids ascend (cheap index inserts)."""
    millis = int(time.time() * 1000)
    head = ""
    for _ in range(9):
        millis, rem = divmod(millis, 36)
        head = _ALPHABET[rem] + head
    bits = int.from_bytes(os.urandom(4)) if noise is None else noise
    return [f"log_{head}{bits:08x}{n:08x}" for n in range(start, start + count)]


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
LEDGER_COLUMNS = (
    "id", "request_id", "created_at", "project_id", "api_key_id", "source", "route", "provider",
    "model_requested", "model_served", "stream", "status_code", "outcome", "input_tokens",
    "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens",
    "reasoning_tokens", "cost_nanos", "saved_cost_nanos", "tokens_saved", "cached", "unpriced",
    "price_version", "service_tier", "latency_ms", "ttft_ms", "upstream_request_id", "error_code",
    "error_message", "session_id", "is_subagent", "external_id",
)  # fmt: skip
DETAIL_COLUMNS = (
    "external_id", "ledger_id", "seq", "ts_ms", "project_dir", "cwd", "session_id", "model",
    "is_sidechain", "fast", "input_tokens", "output_tokens", "cache_creation_tokens",
    "cache_read_tokens", "reported_cost_nanos", "calc_cost_nanos", "ccusage_cost_nanos", "unpriced",
    "ccusage_unpriced",
)  # fmt: skip
# Columns a replacement leaves alone (identity and where the key lives).
LEDGER_KEEP = frozenset({"id", "source", "external_id", "route"})


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    # Names come from the constants above, never from input.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


_INSERT_LEDGER = _insert_sql("ledger", LEDGER_COLUMNS)
_INSERT_DETAIL = _insert_sql("claude_entries", DETAIL_COLUMNS)
_UPDATE_LEDGER = "UPDATE ledger SET {} WHERE id = ?".format(  # noqa: S608
    ", ".join(f"{c} = ?" for c in LEDGER_COLUMNS if c not in LEDGER_KEEP)
)
_UPDATE_DETAIL = "UPDATE claude_entries SET {} WHERE external_id = ?".format(  # noqa: S608
    ", ".join(f"{c} = ?" for c in DETAIL_COLUMNS if c != "external_id")
)
_SECONDS: dict[int, str] = {}


def sqlite_time(ts_ms: int) -> str:
    """SQLAlchemy's SQLite DATETIME text for a UTC instant, exact to the millisecond."""
    seconds, millis = divmod(ts_ms, 1000)
    text = _SECONDS.get(seconds)
    if text is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        text = _SECONDS[seconds] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    return f"{text}.{millis:03d}000"


def ledger_row(
    entry: Entry, project_dir: str, is_subagent: bool, ledger_id: str, cost_mode: str, price_version: str,
    created: Any,
) -> tuple[Any, ...]:  # fmt: skip
    usage = entry.usage
    error = entry.api_error_status is not None
    unpriced = entry.unpriced and not (cost_mode != "calculate" and entry.reported_nanos is not None)
    return (
        ledger_id, None, created, (entry.cwd or project_dir)[:1024], None, SOURCE, SOURCE,
        "anthropic", entry.model, entry.model, False, entry.api_error_status if error else 200,
        "error" if error else "ok", usage.input_tokens, usage.cache_read_tokens, usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens, usage.output_tokens, 0, entry.ledger_cost(cost_mode), 0, 0, False,
        unpriced, price_version, None, None, None, None, "api_error" if error else None, None,
        entry.session_id[:64], is_subagent or entry.is_sidechain, entry.key,
    )  # fmt: skip


def detail_row(
    entry: Entry, project_dir: str, is_subagent: bool, ledger_id: str, seq: int
) -> tuple[Any, ...]:
    usage = entry.usage
    return (
        entry.key, ledger_id, seq, entry.ts_ms, project_dir[:512], entry.cwd[:1024] if entry.cwd else None,
        entry.session_id, entry.model[:200] if entry.model else None, entry.is_sidechain or is_subagent,
        entry.fast, usage.input_tokens, usage.output_tokens,
        usage.cache_write_5m_tokens + usage.cache_write_1h_tokens, usage.cache_read_tokens,
        entry.reported_nanos, entry.calc_nanos, entry.ccusage_nanos, entry.unpriced, entry.ccusage_unpriced,
    )  # fmt: skip


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
    """Everything read from one file: packed entries (see ``_pack``) and the new cursor values."""

    entries: list[tuple[Any, ...]]
    lines: int
    malformed: int
    offset: int
    head: bytes
    fresh: bool
    session: str
    error: str | None = None


_WORKER_PRICER: Pricer | None = None


def _pack(
    entry: Entry, project_dir: str, is_subagent: bool, cost_mode: str, price_version: str
) -> tuple[Any, ...]:
    """What the writer needs of an entry: the de-duplication facts and both rows without the
    ledger id and seq (assigned when the entry is kept). Built where the line was parsed."""
    ledger = ledger_row(
        entry, project_dir, is_subagent, "", cost_mode, price_version, sqlite_time(entry.ts_ms)
    )
    detail = detail_row(entry, project_dir, is_subagent, "", 0)
    return (entry.key, entry.usage.total_tokens, entry.is_sidechain, entry.session_id, ledger[1:], detail[3:])


def read_file(
    file: TranscriptFile,
    start: int,
    expect_head: tuple[str, int] | None,
    pricer: Pricer,
    chunk_bytes: int,
    cost_mode: str,
    price_version: str,
) -> _FileRead:
    from tollhouse.claude_code.parser import read_chunk

    offset, lines, malformed = start, 0, 0
    head, fresh = b"", start == 0
    session = file.session_id
    entries: list[tuple[Any, ...]] = []
    try:
        while True:
            chunk = read_chunk(file, offset, pricer, max_bytes=chunk_bytes, expect_head=expect_head)
            expect_head = None
            if chunk.restarted or chunk.head:
                offset, head, fresh = 0, chunk.head, True
            session = session or chunk.line_session_id or ""
            offset += chunk.consumed
            lines += chunk.lines
            malformed += chunk.malformed
            project_dir, subagent = file.project_dir, file.is_subagent
            entries.extend(_pack(e, project_dir, subagent, cost_mode, price_version) for e in chunk.entries)
            if chunk.eof:
                break
    except OSError as exc:
        return _FileRead([], 0, 0, start, b"", False, session, error=str(exc))
    return _FileRead(entries, lines, malformed, offset, head, fresh, session)


def _pool_job(job: tuple[TranscriptFile, int, tuple[str, int] | None, int, str, str]) -> _FileRead:
    assert _WORKER_PRICER is not None
    return read_file(job[0], job[1], job[2], _WORKER_PRICER, job[3], job[4], job[5])


class _Import:
    def __init__(
        self, conn: sqlite3.Connection, pricer: Pricer, cost_mode: str, price_version: str, batch_rows: int
    ) -> None:
        self.conn = conn
        self.pricer = pricer
        self.cost_mode = cost_mode
        self.price_version = price_version
        self.batch_rows = batch_rows
        self.result = ScanResult()
        self.kept: dict[str, Kept] = {}
        self.seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM claude_entries").fetchone()[0])
        self.db_empty = self.seq == 0
        self.placed: list[tuple[Any, ...]] = []  # packed entries (see ``_pack``)
        self.cursors: list[_Cursor] = []
        self.noise = int.from_bytes(os.urandom(4))
        self.id_count = 0
        self.bulk = False

    def flush(self) -> None:
        placed, self.placed = self.placed, []
        cursors, self.cursors = self.cursors, []
        if not placed and not cursors:
            return
        conn = self.conn
        unknown = list(dict.fromkeys(p[0] for p in placed if p[0] not in self.kept))
        if unknown and not self.db_empty:
            for start in range(0, len(unknown), _IN_CHUNK):
                part = unknown[start : start + _IN_CHUNK]
                query = (
                    "SELECT external_id, ledger_id, seq, input_tokens + output_tokens + cache_creation_tokens"  # noqa: S608
                    " + cache_read_tokens, is_sidechain, session_id FROM claude_entries WHERE external_id IN"
                    f" ({', '.join('?' * len(part))})"
                )
                for key, ledger_id, seq, total, side, session in conn.execute(query, part):
                    self.kept[key] = Kept(ledger_id, int(seq), int(total), bool(side), session)
        inserts: dict[str, tuple[Any, ...]] = {}
        replacements: dict[str, tuple[Any, ...]] = {}
        dirty: set[str] = set()
        ids = ledger_ids(len(placed), self.id_count, self.noise)
        self.id_count += len(placed)
        next_id = 0
        kept_copies = self.kept
        for packed in placed:
            key, total, side, session = packed[0], packed[1], packed[2], packed[3]
            kept = kept_copies.get(key)
            if kept is None:
                self.seq += 1
                ledger_id, seq = ids[next_id], self.seq
                next_id += 1
                inserts[key] = (packed, ledger_id, seq)
            elif better(total, side, kept):
                ledger_id, seq = kept.ledger_id, kept.seq
                (inserts if key in inserts else replacements)[key] = (packed, ledger_id, seq)
                if kept.session_id:
                    dirty.add(kept.session_id)
            else:
                continue
            dirty.add(session)
            kept_copies[key] = Kept(ledger_id, seq, total, side, session)
        self.result.entries_added += len(inserts)
        self.result.entries_replaced += len(replacements)
        if not self.bulk:
            conn.execute("BEGIN IMMEDIATE")
        try:
            self._write(inserts.values(), replacements.values(), dirty, cursors)
        except BaseException:
            if not self.bulk:
                conn.execute("ROLLBACK")
            raise
        if not self.bulk:
            conn.execute("COMMIT")

    def _write(
        self,
        inserts: Iterable[tuple[Any, ...]],
        replacements: Iterable[tuple[Any, ...]],
        dirty: set[str],
        cursors: list[_Cursor],
    ) -> None:
        conn = self.conn
        rows = list(inserts)
        if rows:
            conn.executemany(_INSERT_LEDGER, [(i, *p[4]) for p, i, _ in rows])
            conn.executemany(_INSERT_DETAIL, [(p[0], i, q, *p[5]) for p, i, q in rows])
        rows = list(replacements)
        if rows:
            keep = [n - 1 for n, c in enumerate(LEDGER_COLUMNS) if c not in LEDGER_KEEP]
            conn.executemany(_UPDATE_LEDGER, [(*(p[4][n] for n in keep), i) for p, i, _ in rows])
            conn.executemany(_UPDATE_DETAIL, [(i, q, *p[5], p[0]) for p, i, q in rows])
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
        self.placed.extend(read.entries)
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
) -> ScanResult:
    """Bring the SQLite database at ``path`` up to date with the transcripts under ``roots``.

    ``prices`` is called only when something has to be read. A first import bigger than a few
    tens of megabytes is one transaction (atomic: a crash leaves nothing half-imported), written
    with the rollback journal instead of the WAL (the data is written once, not twice) and, on a
    multi-core machine with no other threads running, parsed in a process pool.
    """
    files = list_with_stats(roots)
    conn = connect(path)
    try:
        cursors = load_cursors(conn)
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
            return result
        from tollhouse.claude_code.parser import Pricer

        table = prices()
        pricer = Pricer(table)
        job = _Import(conn, pricer, cost_mode, table.version, batch_rows)
        version = table.version
        job.result = result
        pending = sum(max(stat.st_size - start, 0) for _, stat, _, start, _ in todo)
        if job.db_empty and pending >= _COLD_MIN_BYTES:
            _bulk_begin(job)
        try:
            for (file, stat, cursor, _, _), read in zip(
                todo, _reads(todo, pricer, chunk_bytes, pending, workers, cost_mode, version), strict=True
            ):
                job.add_file(file, stat, cursor, read, known_sessions)
            job.flush()
        except BaseException:
            if job.bulk:
                conn.execute("ROLLBACK")
                _bulk_end(job)
            raise
        if job.bulk:
            _bulk_commit(job)
            _bulk_end(job)
        return job.result
    finally:
        conn.close()


def _bulk_begin(job: _Import) -> None:
    conn = job.conn
    with contextlib.suppress(sqlite3.OperationalError):  # stays WAL while others have the file open
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MB while it lasts
    conn.execute("BEGIN IMMEDIATE")
    job.bulk = True
    job.batch_rows = max(job.batch_rows, 20_000)


def _bulk_commit(job: _Import) -> None:
    job.conn.execute("COMMIT")


def _bulk_end(job: _Import) -> None:
    conn = job.conn
    job.bulk = False
    conn.execute("PRAGMA cache_size=-2000")
    conn.execute("PRAGMA synchronous=NORMAL")
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA journal_mode=WAL")


def _reads(
    todo: Sequence[tuple[TranscriptFile, os.stat_result, Any, int, tuple[str, int] | None]],
    pricer: Pricer,
    chunk_bytes: int,
    pending: int,
    workers: int | None,
    cost_mode: str,
    version: str,
) -> Iterator[_FileRead]:
    count = workers if workers is not None else (os.cpu_count() or 1)
    use_pool = (
        count > 1
        and pending >= _POOL_MIN_BYTES
        and len(todo) > 1
        and threading.active_count() == 1  # forking a threaded process is unsafe
        and hasattr(os, "fork")
    )
    if not use_pool:
        for file, _, _, start, expect in todo:
            yield read_file(file, start, expect, pricer, chunk_bytes, cost_mode, version)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    global _WORKER_PRICER
    _WORKER_PRICER = pricer  # inherited by the forked workers
    jobs = [(file, start, expect, chunk_bytes, cost_mode, version) for file, _, _, start, expect in todo]
    window = count * 8  # files in flight: bounds memory when parsing outruns writing
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
        flight: deque[Future[_FileRead]] = deque()
        for job in jobs:
            flight.append(pool.submit(_pool_job, job))
            if len(flight) >= window:
                yield flight.popleft().result()
        while flight:
            yield flight.popleft().result()
    _WORKER_PRICER = None


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
    low, high = conn.execute(f"SELECT min(ts_ms), max(ts_ms) FROM claude_entries {where}", params).fetchone()  # noqa: S608
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
        f" coalesce(model, '') AS gm, fast, {_AGG_SELECT} FROM claude_entries {where}"
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
        conn.execute("DELETE FROM claude_dirty WHERE id < (SELECT min(dirty_id) FROM claude_agg_state)")
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
