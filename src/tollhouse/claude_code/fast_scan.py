"""The incremental scan on SQLite with the stdlib ``sqlite3`` module: read only new bytes of
changed transcripts (per-file cursors; truncation and replacement detected), parse them (in
forked worker processes when there is much to read), de-duplicate by ``(message.id,
requestId)`` keeping the largest copy, and write one ledger row per response. A first import
this big runs as one bulk transaction with the secondary indexes rebuilt at the end.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.claude_code.discovery import TranscriptFile, listing
from tollhouse.claude_code.lite import (
    IN_CHUNK,
    SEQ,
    SEQ_KIND,
    SESSION,
    SOURCE,
    Cursor,
    Ids,
    Kept,
    ScanResult,
    better,
    connect,
    insert_sql,
    mark,
    mark_changed,
    plan,
    set_mark,
    update_sql,
)

if TYPE_CHECKING:
    from tollhouse.claude_code.first_rollups import FirstRollups
    from tollhouse.claude_code.pricer import Pricer, Rates
    from tollhouse.claude_code.reader import FileRead
    from tollhouse.claude_code.spool import Spools
    from tollhouse.pricing import PriceTable

_COLD_MIN_BYTES = 32 * 1024 * 1024  # a first import this big runs as one bulk transaction


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
        self.placed: list[tuple[int, bool, tuple[Any, ...]]] = []  # see ``line_rows.FileRows``
        self.cursors: list[Cursor] = []
        self.bulk = False
        self.first: FirstRollups | None = None  # a first import's roll-ups, from the files' sums
        self.spools: Spools | None = None  # a big first import's rows, spooled by the parsing processes

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
            for start in range(0, len(unknown), IN_CHUNK):
                part = unknown[start : start + IN_CHUNK]
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
            if self.first is not None:  # both files' sums counted this response: SQL decides
                self.first.leave_to_sql(facts.session_id)
                self.first.leave_to_sql(params[SESSION])
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
        cursors: list[Cursor],
        seq: int,
    ) -> None:
        conn = self.conn
        assert conn is not None
        if inserts:
            conn.executemany(self.insert_sql, inserts)
            if seq > self.seq:
                self.seq = seq
                set_mark(conn, SEQ_KIND, seq)
        if replacements:
            conn.executemany(self.update_sql, replacements)
        mark_changed(conn, dirty)
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
        cursor: Cursor | None,
        read: FileRead,
        known_sessions: _KnownSessions,
    ) -> None:
        from tollhouse.claude_code.spans import HEAD_BYTES, fingerprint

        result = self.result
        if read.error is not None:
            result.unreadable_files.append(str(file.path))
            return
        self.placed.extend(read.rows)
        if read.brief is not None:
            assert self.spools is not None
            self.spools.add(read.brief, self.first)
        if self.first is not None and read.sums is not None:
            self.first.add(read.sums)
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
            Cursor(
                str(file.path), file.project_dir, session, file.is_subagent, stat.st_size, stat.st_mtime_ns,
                stat.st_ino, read.offset, head_hash, head_len,
                read.lines + (cursor.lines if keep and cursor else 0),
                read.malformed + (cursor.malformed_lines if keep and cursor else 0),
            )
        )  # fmt: skip
        if len(self.placed) >= self.batch_rows:
            self.flush()


_CURSOR_QUERY = (
    "SELECT path, project_dir, session_id, is_subagent, size, mtime_ns, inode, read_offset, head_hash,"
    " head_len, lines, malformed_lines FROM claude_files"
)


class _KnownSessions:
    """Whether a session was imported before this scan (to tell new sessions from changed ones):
    asked one by one when few files changed, else all loaded at once."""

    def __init__(self, conn: sqlite3.Connection | None, *, few: bool) -> None:
        self.conn = conn
        self.known: dict[str, bool] = {}
        if conn is not None and not few:
            self.known = dict.fromkeys(
                (r[0] for r in conn.execute("SELECT DISTINCT session_id FROM claude_files")), True
            )
            self.conn = None  # everything is in ``known``

    def __contains__(self, session: str) -> bool:
        found = self.known.get(session)
        if found is None:
            query = "SELECT 1 FROM claude_files WHERE session_id = ? LIMIT 1"
            found = self.known[session] = (
                self.conn is not None and self.conn.execute(query, (session,)).fetchone() is not None
            )
        return found


def load_cursors(conn: sqlite3.Connection) -> dict[str, tuple[int, int, int]]:
    """Path -> (size, mtime, inode) as last read: enough to see that a file did not change. The
    whole ``Cursor`` is loaded only for the files that did (``_cursor``)."""
    return {row[0]: row[1:] for row in conn.execute("SELECT path, size, mtime_ns, inode FROM claude_files")}


def _cursor(conn: sqlite3.Connection | None, path: str) -> Cursor | None:
    if conn is None:
        return None
    row = conn.execute(f"{_CURSOR_QUERY} WHERE path = ?", (path,)).fetchone()
    return Cursor(*row) if row is not None else None


def _changes(
    roots: Sequence[Path], conn: sqlite3.Connection | None, result: ScanResult
) -> list[tuple[TranscriptFile, os.stat_result, Cursor | None, int, tuple[str, int] | None]]:
    """The transcripts with bytes to read, where from; one ``stat`` per unchanged file and nothing
    more (a warm report's whole scan). Unreadable files that have something to read are reported."""
    cursors = load_cursors(conn) if conn is not None else {}
    todo: list[tuple[TranscriptFile, os.stat_result, Cursor | None, int, tuple[str, int] | None]] = []
    stat_of = os.stat
    for listed in listing(roots):
        if len(listed.parts) < 2:
            continue  # directly in projects/: no project, not a transcript
        text = listed.text
        try:
            stat = stat_of(text)
        except OSError:
            continue  # vanished between listing and stat
        result.files_seen += 1
        seen = cursors.get(text)
        if (
            seen is not None
            and seen[0] == stat.st_size
            and seen[1] == stat.st_mtime_ns
            and (not seen[2] or seen[2] == stat.st_ino)
        ):
            continue  # unchanged
        cursor = _cursor(conn, text) if seen is not None else None
        start, expect = plan(stat, cursor)
        file = listed.describe()
        if start is None or file is None:
            continue
        if not os.access(text, os.R_OK):
            result.unreadable_files.append(text)
            continue
        todo.append((file, stat, cursor, start, expect))
    return todo


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
    rollup_kinds: Sequence[str] = (),
    price_source: str | None = None,
) -> ScanResult:
    """Bring the SQLite database at ``path`` up to date with the transcripts under ``roots``.

    ``prices`` is called only when something has to be read. ``create``, when given, makes the
    database (which does not exist yet, so nothing has been read): it runs while the parsing
    processes already work. A first import bigger than a few tens of megabytes is one
    transaction (atomic: a crash leaves nothing half-imported), written with the rollback
    journal instead of the WAL (the data is written once, not twice), with the ledger's
    secondary indexes built after the rows and, on a multi-core machine with no other threads
    running, parsed in a process pool whose processes also write the rows (see
    :mod:`tollhouse.claude_code.spool`); it also builds the report roll-ups ``rollup_kinds`` (see
    :mod:`tollhouse.claude_code.first_rollups`). With ``price_source`` (see
    ``pricing.snapshot.source_key``) the rates of the models priced are remembered in the
    database, and a later scan under the same source prices those models without calling
    ``prices`` (``claude_price_cache``).
    """
    # Hundreds of thousands of long-lived tuples: cyclic collection only costs here. Only on the
    # main thread (the CLI): the switch is process-wide, a server's other threads keep theirs.
    collecting = gc.isenabled() and threading.current_thread() is threading.main_thread()
    if collecting:
        gc.disable()
    conn: sqlite3.Connection | None = None
    reader: Reader | None = None
    spools: Spools | None = None
    try:
        if create is None:
            conn = connect(path)
        result = ScanResult()
        todo = _changes(roots, conn, result)
        if not todo:
            if create is not None:
                create()
            return result
        from tollhouse.claude_code.line_rows import TYPED_MIN_BYTES
        from tollhouse.claude_code.pricer import Pricer
        from tollhouse.claude_code.reader import Reader, pool_size

        known_sessions = _KnownSessions(conn, few=len(todo) <= 16)
        pending = sum(max(stat.st_size - start, 0) for _, stat, _, start, _ in todo)
        base = 0 if conn is None else last_seq(conn)
        bulk = base == 0 and pending >= _COLD_MIN_BYTES
        remembered = None
        if conn is not None and price_source is not None and not bulk:
            remembered = _remembered_rates(conn, price_source)
        if remembered is not None:
            version, known = remembered
            pricer = Pricer(prices, known)  # the table loads only for a model not in ``known``
        else:
            table = prices()
            version, pricer = table.version, Pricer(table)
        job = _Import(pricer, cost_mode, version, batch_rows)
        job.result = result
        if bulk and rollup_kinds:
            from tollhouse.claude_code.first_rollups import FirstRollups

            job.first = FirstRollups(rollup_kinds)
        summer = job.first.summer if job.first is not None else None
        processes = pool_size(todo, pending, workers)
        if processes > 1:
            pricer.table  # noqa: B018 (loaded before the fork: once, and what it learns stays here)
        if bulk and processes > 1:
            from tollhouse.claude_code.spool import Spools
            from tollhouse.db.sqlite_schema import table_ddl

            spools = job.spools = Spools(path, processes, table_ddl("ledger"), job.ids)
        spooling = (spools.paths, job.insert_sql) if spools is not None else None
        typed = pending >= TYPED_MIN_BYTES
        reader = Reader(todo, pricer, chunk_bytes, base, processes, summer, spooling, typed=typed)
        if conn is None:
            assert create is not None
            create()  # while the workers parse
            conn = connect(path)
        job.open(conn)
        if job.seq != base:
            raise RuntimeError("the database changed while it was being created")
        indexes = _bulk_begin(job) if bulk else []
        try:
            for (file, stat, cursor, _, _), read in zip(todo, reader, strict=True):
                job.add_file(file, stat, cursor, read, known_sessions)
            job.flush()
            if spools is not None:
                spools.copy(conn, job.result)
            for sql in indexes:
                conn.execute(sql)
            if job.first is not None:
                job.first.write(conn)
        except BaseException:
            if job.bulk:
                conn.execute("ROLLBACK")
                _bulk_end(job)
            raise
        if job.bulk:
            conn.execute("COMMIT")
            _bulk_end(job)
        if price_source is not None and (remembered is None or pricer.learned):
            if pricer.loaded and pricer.table.version != version:
                raise RuntimeError("the price table changed during the scan; run the report again")
            _remember_rates(conn, price_source, version, pricer.known_rates())
        return job.result
    finally:
        if reader is not None:
            reader.close()
        if conn is not None:
            conn.close()
        if spools is not None:
            spools.remove()
        if collecting:
            gc.enable()


def _remembered_rates(conn: sqlite3.Connection, source: str) -> tuple[str, dict[str, Rates]] | None:
    row = conn.execute("SELECT version, rates FROM claude_price_cache WHERE source = ?", (source,)).fetchone()
    if row is None:
        return None
    rates = {model: (tuple(r[:5]), int(r[5])) for model, r in orjson.loads(row[1]).items()}
    return str(row[0]), rates


def _remember_rates(conn: sqlite3.Connection, source: str, version: str, rates: dict[str, Rates]) -> None:
    """One price source at a time: rates of an older snapshot or other overrides are dropped."""
    data = orjson.dumps({model: [*numbers, denominator] for model, (numbers, denominator) in rates.items()})
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM claude_price_cache WHERE source != ?", (source,))
        conn.execute(
            "INSERT OR REPLACE INTO claude_price_cache (source, version, rates) VALUES (?, ?, ?)",
            (source, version, data.decode()),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def last_seq(conn: sqlite3.Connection) -> int:
    return mark(conn, SEQ_KIND) or 0


def _bulk_begin(job: _Import) -> list[str]:
    """Start the one-transaction first import; the ledger's secondary indexes are dropped inside
    it and rebuilt at its end (sorting once is cheaper than 250k scattered index inserts).
    Returns the statements that rebuild them."""
    conn = job.conn
    assert conn is not None
    with contextlib.suppress(sqlite3.OperationalError):  # stays WAL while others have the file open
        conn.execute("PRAGMA main.journal_mode=DELETE")
    conn.execute("PRAGMA main.synchronous=OFF")
    conn.execute("PRAGMA main.cache_size=-262144")  # 256 MB while it lasts
    if job.spools is not None:
        job.spools.attach(conn)  # SQLite attaches nothing inside a transaction
    # Deferred, not IMMEDIATE: that would also lock every attached spool while the parsing
    # processes still write them. The first DROP INDEX takes the main database's write lock.
    conn.execute("BEGIN")
    job.bulk = True
    job.batch_rows = max(job.batch_rows, 20_000)
    found = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in found:
        conn.execute(f'DROP INDEX "{name}"')
    if not found:
        conn.execute("DELETE FROM claude_dirty WHERE 0")  # the write lock all the same
    if last_seq(conn) != job.seq:
        raise RuntimeError("another import of these transcripts ran meanwhile; run the report again")
    return [sql for _, sql in found]


def _bulk_end(job: _Import) -> None:
    conn = job.conn
    assert conn is not None
    job.bulk = False
    if job.spools is not None:
        job.spools.detach(conn)
    conn.execute("PRAGMA main.cache_size=-2000")
    conn.execute("PRAGMA main.synchronous=NORMAL")
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA main.journal_mode=WAL")
