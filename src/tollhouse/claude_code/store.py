"""The importer's SQL: read cursors, look up kept duplicates, write ledger + detail rows in batches.

Every write for one batch (new rows, replaced rows, the cursors of files read to the end) is one
transaction, so a crash leaves cursors that never point past rows not yet written: the next
scan re-reads a little and de-duplication makes that harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollhouse.claude_code.parser import Entry
from tollhouse.db.tables import claude_entries, claude_files, ledger

SOURCE = "claude-code"
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
class Kept:
    """The copy of a response currently counted: what a later copy is compared with."""

    ledger_id: str
    seq: int
    total: int
    is_sidechain: bool


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
        query = select(c.external_id, c.ledger_id, c.seq, total, c.is_sidechain).where(
            c.external_id.in_(keys[start : start + _IN_CHUNK])
        )
        for key, ledger_id, seq, tokens, sidechain in await conn.execute(query):
            found[key] = Kept(ledger_id, int(seq), int(tokens), bool(sidechain))
    return found


async def write(
    conn: AsyncConnection,
    inserts: Sequence[Placed],
    replacements: Sequence[Placed],
    cursors: Sequence[Cursor],
    *,
    cost_mode: str,
    price_version: str,
) -> None:
    if inserts:
        await conn.execute(ledger.insert(), [_ledger_row(p, cost_mode, price_version) for p in inserts])
        await conn.execute(claude_entries.insert(), [_detail_row(p) for p in inserts])
    if replacements:
        ledger_rows = [_ledger_row(p, cost_mode, price_version) for p in replacements]
        for row in ledger_rows:
            row["b_id"] = row.pop("id")
        await conn.execute(
            update(ledger).where(ledger.c.id == bindparam("b_id")),
            [{k: v for k, v in row.items() if k not in _LEDGER_KEEP} for row in ledger_rows],
        )
        detail_rows = [_detail_row(p) for p in replacements]
        for row in detail_rows:
            row["b_key"] = row.pop("external_id")
        await conn.execute(
            update(claude_entries).where(claude_entries.c.external_id == bindparam("b_key")), detail_rows
        )
    if cursors:
        paths = [cursor.path for cursor in cursors]
        for start in range(0, len(paths), _IN_CHUNK):
            await conn.execute(delete(claude_files).where(claude_files.c.path.in_(paths[start : start + _IN_CHUNK])))
        await conn.execute(claude_files.insert(), [cursor.row() for cursor in cursors])


# Columns a replacement leaves alone (identity and where the key lives).
_LEDGER_KEEP = frozenset({"source", "external_id", "route"})


def _ledger_row(placed: Placed, cost_mode: str, price_version: str) -> dict[str, Any]:
    entry = placed.entry
    usage = entry.usage
    error = entry.api_error_status is not None
    return {
        "id": placed.ledger_id,
        "request_id": None,
        "created_at": datetime.fromtimestamp(entry.ts_ms / 1000, UTC),
        "project_id": (entry.cwd or placed.project_dir)[:1024],
        "api_key_id": None,
        "source": SOURCE,
        "route": SOURCE,
        "provider": "anthropic",
        "model_requested": entry.model,
        "model_served": entry.model,
        "stream": False,
        "status_code": entry.api_error_status if error else 200,
        "outcome": "error" if error else "ok",
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": 0,
        "cost_nanos": entry.ledger_cost(cost_mode),
        "saved_cost_nanos": 0,
        "tokens_saved": 0,
        "cached": False,
        "unpriced": entry.unpriced and not (cost_mode != "calculate" and entry.reported_nanos is not None),
        "price_version": price_version,
        "service_tier": None,
        "latency_ms": None,
        "ttft_ms": None,
        "upstream_request_id": None,
        "error_code": "api_error" if error else None,
        "error_message": None,
        "session_id": entry.session_id[:64],
        "is_subagent": placed.is_subagent or entry.is_sidechain,
        "external_id": entry.key,
    }


def _detail_row(placed: Placed) -> dict[str, Any]:
    entry = placed.entry
    usage = entry.usage
    return {
        "external_id": entry.key,
        "ledger_id": placed.ledger_id,
        "seq": placed.seq,
        "ts_ms": entry.ts_ms,
        "project_dir": placed.project_dir[:512],
        "cwd": entry.cwd[:1024] if entry.cwd else None,
        "session_id": entry.session_id,
        "file_path": placed.file_path[:1024],
        "model": entry.model[:200] if entry.model else None,
        "is_sidechain": entry.is_sidechain or placed.is_subagent,
        "fast": entry.fast,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "reported_cost_nanos": entry.reported_nanos,
        "calc_cost_nanos": entry.calc_nanos,
        "ccusage_cost_nanos": entry.ccusage_nanos,
        "unpriced": entry.unpriced,
        "ccusage_unpriced": entry.ccusage_unpriced,
    }


def session_ids(cursors: Iterable[Cursor]) -> set[str]:
    return {cursor.session_id for cursor in cursors if cursor.session_id}
