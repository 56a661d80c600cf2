"""Claude Code transcripts into the ledger: incremental, de-duplicated, priced, never fatal.

Each scan stats every transcript and reads only what changed since the last one (a per-file
cursor: offset, size, mtime, inode and a fingerprint of the first bytes). A response Claude
Code wrote several times — one line per content block, again in a resumed session's file —
counts once per ``(message.id, requestId)`` across all files and scans, as the copy with the
largest token total: a larger copy found later replaces the row, a smaller one is ignored.
Already imported rows are kept when a file is truncated or replaced: that spend happened.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.claude_code import fast_scan, lite, store
from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.lite import Cursor, Kept, ScanResult, list_with_stats, plan
from tollhouse.claude_code.parser import HEAD_BYTES, Chunk, CostMode, Entry, Pricer, fingerprint, read_chunk
from tollhouse.claude_code.store import Placed
from tollhouse.pricing import PriceTable

log = logging.getLogger(__name__)
__all__ = ["ClaudeImporter", "ScanResult"]


@dataclass(slots=True)
class _Batch:
    placed: list[Placed] = field(default_factory=list)
    cursors: list[Cursor] = field(default_factory=list)


class ClaudeImporter:
    """Imports every transcript under ``roots``; ``scan()`` is safe to call as often as wanted."""

    def __init__(
        self,
        engine: AsyncEngine,
        prices: PriceTable,
        roots: Sequence[Path],
        *,
        cost_mode: str = "auto",
        chunk_bytes: int = 8 * 1024 * 1024,
        batch_rows: int = 1000,
    ) -> None:
        if cost_mode not in CostMode.ALL:
            raise ValueError(f"cost_mode must be one of {', '.join(CostMode.ALL)}, not {cost_mode!r}")
        self._engine = engine
        self._prices = prices
        self._pricer = Pricer(prices)
        self._roots = list(roots)
        self._cost_mode = cost_mode
        self._chunk_bytes = chunk_bytes
        self._batch_rows = batch_rows
        self._lock = asyncio.Lock()

    async def scan(self) -> ScanResult:
        async with self._lock:
            path = lite.sqlite_path(self._engine.url.render_as_string(hide_password=False))
            if path is not None:
                # A SQLite file: the stdlib driver in a worker thread, no ORM in the hot loop.
                return await asyncio.to_thread(
                    fast_scan.scan,
                    path,
                    self._roots,
                    lambda: self._prices,
                    cost_mode=self._cost_mode,
                    chunk_bytes=self._chunk_bytes,
                    batch_rows=self._batch_rows,
                    workers=1,
                )
            return await _Scan(self).run()


class _Scan:
    """The state of one scan: the kept copy of every response it has seen or looked up."""

    def __init__(self, importer: ClaudeImporter) -> None:
        self.importer = importer
        self.result = ScanResult()
        self.kept: dict[str, Kept] = {}
        self.batch = _Batch()
        self.seq = 0
        self.db_empty = False
        self.writing: asyncio.Task[None] | None = None

    async def run(self) -> ScanResult:
        files = await asyncio.to_thread(list_with_stats, self.importer._roots)
        self.result.files_seen = len(files)
        async with self.importer._engine.connect() as conn:
            cursors = await store.load_cursors(conn)
            self.seq = await store.max_seq(conn)
        self.db_empty = self.seq == 0
        known_sessions = store.session_ids(cursors.values())
        try:
            for file, stat in files:
                if stat is None:
                    self.result.unreadable_files.append(str(file.path))
                    continue
                await self._file(file, stat, cursors.get(str(file.path)), known_sessions)
            await self._flush()
        finally:
            await self._wait_for_write()  # never leave a write running past the scan
        return self.result

    async def _file(
        self, file: TranscriptFile, stat: os.stat_result, cursor: Cursor | None, known_sessions: set[str]
    ) -> None:
        start, expect_head = plan(stat, cursor)
        if start is None:
            return
        offset, lines, malformed = start, 0, 0
        head, fresh = b"", start == 0
        session = file.session_id
        try:
            while True:
                chunk: Chunk = await asyncio.to_thread(
                    read_chunk,
                    file,
                    offset,
                    self.importer._pricer,
                    max_bytes=self.importer._chunk_bytes,
                    expect_head=expect_head,
                )
                expect_head = None
                if chunk.restarted or chunk.head:
                    offset, head, fresh = 0, chunk.head, True
                session = session or chunk.line_session_id or ""
                offset += chunk.consumed
                lines += chunk.lines
                malformed += chunk.malformed
                self._add(file, chunk.entries)
                if chunk.eof:
                    break
                if len(self.batch.placed) >= self.importer._batch_rows:
                    await self._flush()
        except OSError as exc:
            log.warning("cannot read Claude Code transcript %s: %s", file.path, exc)
            self.result.unreadable_files.append(str(file.path))
            return
        self.result.files_read += 1
        self.result.lines_read += lines
        self.result.malformed_lines += malformed
        if not session:
            session = file.path.stem
        if lines:
            self.result.changed_sessions.add(session)
            if session not in known_sessions:
                self.result.new_sessions.add(session)
        if fresh or cursor is None:
            head_hash, head_len = fingerprint(head[: min(HEAD_BYTES, offset)])
        else:
            head_hash, head_len = cursor.head_hash, cursor.head_len
        self.batch.cursors.append(
            Cursor(
                path=str(file.path),
                project_dir=file.project_dir,
                session_id=session,
                is_subagent=file.is_subagent,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                inode=stat.st_ino,
                read_offset=offset,
                head_hash=head_hash,
                head_len=head_len,
                lines=lines + (0 if fresh or cursor is None else cursor.lines),
                malformed_lines=malformed + (0 if fresh or cursor is None else cursor.malformed_lines),
            )
        )
        if len(self.batch.placed) >= self.importer._batch_rows:
            await self._flush()

    def _add(self, file: TranscriptFile, entries: list[Entry]) -> None:
        for entry in entries:
            self.batch.placed.append(Placed(entry, file.project_dir, file.is_subagent, "", 0))

    async def _flush(self) -> None:
        """Decide what the batch changes now, then write it while the next batch is parsed
        (SQLite works outside the GIL, so reading and writing overlap); one write at a time."""
        batch, self.batch = self.batch, _Batch()
        if not batch.placed and not batch.cursors:
            return
        unknown = [p.entry.key for p in batch.placed if p.entry.key not in self.kept]
        if unknown and not self.db_empty:
            await self._wait_for_write()
            async with self.importer._engine.connect() as conn:
                self.kept.update(await store.kept_copies(conn, list(dict.fromkeys(unknown))))
        inserts: dict[str, Placed] = {}
        replacements: dict[str, Placed] = {}
        ids = iter(store.ledger_ids(len(batch.placed)))
        old_sessions: set[str] = set()
        for placed in batch.placed:
            entry = placed.entry
            kept = self.kept.get(entry.key)
            if kept is None:
                self.seq += 1
                placed.ledger_id, placed.seq = next(ids), self.seq
                inserts[entry.key] = placed
            elif lite.better(entry.total, entry.is_sidechain, kept):
                placed.ledger_id, placed.seq = kept.ledger_id, kept.seq
                (inserts if entry.key in inserts else replacements)[entry.key] = placed
            else:
                continue
            if kept is not None and kept.session_id and kept.session_id != entry.session_id:
                old_sessions.add(kept.session_id)
            self.kept[entry.key] = Kept(
                placed.ledger_id, placed.seq, entry.total, entry.is_sidechain, entry.session_id
            )
        self.result.entries_added += len(inserts)
        self.result.entries_replaced += len(replacements)
        await self._wait_for_write()
        self.writing = asyncio.create_task(
            self._write(list(inserts.values()), list(replacements.values()), batch.cursors, old_sessions)
        )

    async def _write(
        self, inserts: list[Placed], replacements: list[Placed], cursors: list[Cursor], old_sessions: set[str]
    ) -> None:
        async with self.importer._engine.begin() as conn:
            await store.write(
                conn,
                inserts,
                replacements,
                cursors,
                cost_mode=self.importer._cost_mode,
                price_version=self.importer._prices.version,
                old_sessions=old_sessions,
            )

    async def _wait_for_write(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing
