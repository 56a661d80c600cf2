"""The importer's SQL: read cursors, look up kept duplicates, write ledger + detail rows in batches.

Every write for one batch (new rows, replaced rows, the cursors of files read to the end) is one
transaction, so a crash leaves cursors that never point past rows not yet written: the next
scan re-reads a little and de-duplication makes that harmless.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollhouse.claude_code.lite import Kept
from tollhouse.claude_code.parser import Entry
from tollhouse.db.tables import claude_dirty, claude_entries, claude_files, ledger

SOURCE = "claude-code"
__all__ = ["LEDGER_COLUMNS", "Cursor", "Kept", "Placed"]
_IN_CHUNK = 500


@dataclass(slots=True)
class Cursor:
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


@dataclass(slots=True)
class Placed:
    """An entry bound for the database, with where it came from."""

    entry: Entry
    file_path: str
    project_dir: str
    is_subagent: bool
    ledger_id: str
    seq: int


async def load_cursors(conn: AsyncConnection) -> dict[str, Cursor]:
    result = await conn.execute(select(claude_files))
    cursors = {}
    for row in result:
        values = dict(row._mapping)
        values.pop("updated_at", None)
        cursors[row.path] = Cursor(**values)
    return cursors


async def max_seq(conn: AsyncConnection) -> int:
    return int((await conn.scalar(select(func.coalesce(func.max(claude_entries.c.seq), 0)))) or 0)


async def kept_copies(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Kept]:
    c = claude_entries.c
    total = c.input_tokens + c.output_tokens + c.cache_creation_tokens + c.cache_read_tokens
    found: dict[str, Kept] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        query = select(c.external_id, c.ledger_id, c.seq, total, c.is_sidechain, c.session_id).where(
            c.external_id.in_(keys[start : start + _IN_CHUNK])
        )
        for key, ledger_id, seq, tokens, sidechain, session in await conn.execute(query):
            found[key] = Kept(ledger_id, int(seq), int(tokens), bool(sidechain), session)
    return found


async def write(
    conn: AsyncConnection,
    inserts: Sequence[Placed],
    replacements: Sequence[Placed],
    cursors: Sequence[Cursor],
    *,
    cost_mode: str,
    price_version: str,
    old_sessions: Iterable[str] = (),
) -> None:
    """``old_sessions``: sessions replaced copies belonged to (their roll-ups change too)."""
    if inserts:
        sqlite = conn.dialect.name == "sqlite"
        ledger_rows = [_ledger_row(p, cost_mode, price_version, sqlite) for p in inserts]
        detail_rows = [_detail_row(p) for p in inserts]
        if sqlite:
            # The cold import writes hundreds of thousands of rows: hand the driver tuples in the
            # forms SQLAlchemy itself stores, skipping its per-value processing.
            await conn.exec_driver_sql(_INSERT_LEDGER, ledger_rows)
            await conn.exec_driver_sql(_INSERT_DETAIL, detail_rows)
        else:
            await conn.execute(
                ledger.insert(), [dict(zip(LEDGER_COLUMNS, r, strict=True)) for r in ledger_rows]
            )
            await conn.execute(
                claude_entries.insert(), [dict(zip(DETAIL_COLUMNS, r, strict=True)) for r in detail_rows]
            )
    if replacements:
        ledger_updates = []
        for placed in replacements:
            row = dict(zip(LEDGER_COLUMNS, _ledger_row(placed, cost_mode, price_version, False), strict=True))
            row["b_id"] = row.pop("id")
            ledger_updates.append({k: v for k, v in row.items() if k not in _LEDGER_KEEP})
        await conn.execute(update(ledger).where(ledger.c.id == bindparam("b_id")), ledger_updates)
        detail_updates = []
        for placed in replacements:
            row = dict(zip(DETAIL_COLUMNS, _detail_row(placed), strict=True))
            row["b_key"] = row.pop("external_id")
            detail_updates.append(row)
        await conn.execute(
            update(claude_entries).where(claude_entries.c.external_id == bindparam("b_key")), detail_updates
        )
    dirty = sorted({p.entry.session_id for p in (*inserts, *replacements)} | set(old_sessions))
    if dirty:
        await conn.execute(claude_dirty.insert(), [{"session_id": session} for session in dirty])
    if cursors:
        paths = [cursor.path for cursor in cursors]
        for start in range(0, len(paths), _IN_CHUNK):
            await conn.execute(
                delete(claude_files).where(claude_files.c.path.in_(paths[start : start + _IN_CHUNK]))
            )
        await conn.execute(claude_files.insert(), [cursor.row() for cursor in cursors])


def ledger_ids(count: int) -> list[str]:
    """``new_id("log")`` for a whole batch: one clock read and one random read, same format."""
    millis = int(time.time() * 1000)
    head = ""
    for _ in range(9):
        millis, rem = divmod(millis, 36)
        head = _ALPHABET[rem] + head
    noise = os.urandom(8 * count).hex()
    return [f"log_{head}{noise[16 * i : 16 * i + 16]}" for i in range(count)]


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# Columns a replacement leaves alone (identity and where the key lives).
_LEDGER_KEEP = frozenset({"source", "external_id", "route"})
LEDGER_COLUMNS = (
    "id", "request_id", "created_at", "project_id", "api_key_id", "source", "route", "provider",
    "model_requested", "model_served", "stream", "status_code", "outcome", "input_tokens",
    "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens",
    "reasoning_tokens", "cost_nanos", "saved_cost_nanos", "tokens_saved", "cached", "unpriced",
    "price_version", "service_tier", "latency_ms", "ttft_ms", "upstream_request_id", "error_code",
    "error_message", "session_id", "is_subagent", "external_id",
)  # fmt: skip
DETAIL_COLUMNS = tuple(column.name for column in claude_entries.columns)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    # Names come from the constants above and the table definition, never from input.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


_INSERT_LEDGER = _insert_sql("ledger", LEDGER_COLUMNS)
_INSERT_DETAIL = _insert_sql("claude_entries", DETAIL_COLUMNS)


def _ledger_row(placed: Placed, cost_mode: str, price_version: str, sqlite: bool) -> tuple[Any, ...]:
    entry = placed.entry
    usage = entry.usage
    error = entry.api_error_status is not None
    created: Any = datetime.fromtimestamp(entry.ts_ms / 1000, UTC)
    if sqlite:
        created = created.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
    unpriced = entry.unpriced and not (cost_mode != "calculate" and entry.reported_nanos is not None)
    return (
        placed.ledger_id, None, created, (entry.cwd or placed.project_dir)[:1024], None, SOURCE, SOURCE,
        "anthropic", entry.model, entry.model, False, entry.api_error_status if error else 200,
        "error" if error else "ok", usage.input_tokens, usage.cache_read_tokens, usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens, usage.output_tokens, 0, entry.ledger_cost(cost_mode), 0, 0, False,
        unpriced, price_version, None, None, None, None, "api_error" if error else None, None,
        entry.session_id[:64], placed.is_subagent or entry.is_sidechain, entry.key,
    )  # fmt: skip


def _detail_row(placed: Placed) -> tuple[Any, ...]:
    entry = placed.entry
    usage = entry.usage
    return (
        entry.key, placed.ledger_id, placed.seq, entry.ts_ms, placed.project_dir[:512],
        entry.cwd[:1024] if entry.cwd else None, entry.session_id, entry.model[:200] if entry.model else None,
        entry.is_sidechain or placed.is_subagent, entry.fast,
        usage.input_tokens, usage.output_tokens, usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        usage.cache_read_tokens, entry.reported_nanos, entry.calc_nanos, entry.ccusage_nanos, entry.unpriced,
        entry.ccusage_unpriced,
    )  # fmt: skip


def session_ids(cursors: Iterable[Cursor]) -> set[str]:
    return {cursor.session_id for cursor in cursors if cursor.session_id}
