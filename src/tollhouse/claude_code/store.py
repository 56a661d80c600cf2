"""The importer's SQL: read cursors, look up kept duplicates, write ledger rows in batches.

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
from functools import cache
from typing import Any

from sqlalchemy import Subquery, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollhouse.claude_code.lite import LEDGER_COLUMNS, SEQ_KIND, Cursor, Kept
from tollhouse.claude_code.parser import Entry
from tollhouse.db.tables import claude_agg_state, claude_dirty, claude_files, ledger

SOURCE = "claude-code"
__all__ = ["LEDGER_COLUMNS", "Cursor", "Kept", "Placed"]
_IN_CHUNK = 500


@dataclass(slots=True)
class Placed:
    """An entry bound for the database, with where it came from."""

    entry: Entry
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


@cache
def entries() -> Subquery:
    """Imported responses as reports see them: the ledger's Claude Code rows under the names the
    roll-ups use (``cache_creation_tokens`` is both cache-write durations)."""
    c = ledger.c
    return (
        select(
            c.external_id,
            c.id.label("ledger_id"),
            c.claude_seq.label("seq"),
            c.claude_ts_ms.label("ts_ms"),
            c.claude_project_dir.label("project_dir"),
            c.claude_cwd.label("cwd"),
            c.session_id,
            c.model_served.label("model"),
            c.is_subagent.label("is_sidechain"),
            c.claude_fast.label("fast"),
            c.input_tokens,
            c.output_tokens,
            (c.cache_write_5m_tokens + c.cache_write_1h_tokens).label("cache_creation_tokens"),
            c.cache_read_tokens,
            c.claude_reported_nanos.label("reported_cost_nanos"),
            c.claude_calc_nanos.label("calc_cost_nanos"),
            c.claude_ccusage_nanos.label("ccusage_cost_nanos"),
            c.claude_unpriced.label("unpriced"),
            c.claude_ccusage_unpriced.label("ccusage_unpriced"),
        )
        .where(c.source == SOURCE)
        .subquery("claude_entries")
    )


async def max_seq(conn: AsyncConnection) -> int:
    query = select(claude_agg_state.c.dirty_id).where(claude_agg_state.c.kind == SEQ_KIND)
    return int((await conn.scalar(query)) or 0)


async def kept_copies(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Kept]:
    c = ledger.c
    total = (
        c.input_tokens
        + c.output_tokens
        + c.cache_read_tokens
        + c.cache_write_5m_tokens
        + c.cache_write_1h_tokens
    )
    found: dict[str, Kept] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        query = select(c.external_id, c.id, c.claude_seq, total, c.is_subagent, c.session_id).where(
            c.source == SOURCE, c.external_id.in_(keys[start : start + _IN_CHUNK])
        )
        for key, ledger_id, seq, tokens, sidechain, session in await conn.execute(query):
            found[key] = Kept(ledger_id, int(seq or 0), int(tokens), bool(sidechain), session or "")
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
        await conn.execute(ledger.insert(), [_ledger_row(p, cost_mode, price_version) for p in inserts])
    if replacements:
        updates = []
        for placed in replacements:
            row = _ledger_row(placed, cost_mode, price_version)
            row["b_id"] = row.pop("id")
            updates.append({k: v for k, v in row.items() if k not in _LEDGER_KEEP})
        await conn.execute(update(ledger).where(ledger.c.id == bindparam("b_id")), updates)
    if inserts:
        top = max(p.seq for p in inserts)
        await conn.execute(delete(claude_agg_state).where(claude_agg_state.c.kind == SEQ_KIND))
        await conn.execute(claude_agg_state.insert(), [{"kind": SEQ_KIND, "dirty_id": top}])
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
# Columns a replacement leaves alone (identity, where the key lives, first-seen order).
_LEDGER_KEEP = frozenset({"source", "external_id", "route", "claude_seq"})


def _ledger_row(placed: Placed, cost_mode: str, price_version: str) -> dict[str, Any]:
    entry = placed.entry
    usage = entry.usage
    error = entry.api_error_status is not None
    unpriced = entry.unpriced and not (cost_mode != "calculate" and entry.reported_nanos is not None)
    model = entry.model[:200] if entry.model else None
    row: dict[str, Any] = {
        "id": placed.ledger_id, "request_id": None,
        "created_at": datetime.fromtimestamp(entry.ts_ms / 1000, UTC),
        "project_id": (entry.cwd or placed.project_dir)[:1024], "api_key_id": None, "source": SOURCE,
        "route": SOURCE, "provider": "anthropic", "model_requested": model, "model_served": model,
        "stream": False, "status_code": entry.api_error_status if error else 200,
        "outcome": "error" if error else "ok", "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens, "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens, "output_tokens": usage.output_tokens,
        "reasoning_tokens": 0, "cost_nanos": entry.ledger_cost(cost_mode), "saved_cost_nanos": 0,
        "tokens_saved": 0, "cached": False, "unpriced": unpriced, "price_version": price_version,
        "service_tier": None, "latency_ms": None, "ttft_ms": None, "upstream_request_id": None,
        "error_code": "api_error" if error else None, "error_message": None,
        "session_id": entry.session_id[:128], "is_subagent": placed.is_subagent or entry.is_sidechain,
        "external_id": entry.key, "claude_seq": placed.seq, "claude_ts_ms": entry.ts_ms,
        "claude_project_dir": placed.project_dir[:512], "claude_cwd": entry.cwd[:1024] if entry.cwd else None,
        "claude_fast": entry.fast, "claude_reported_nanos": entry.reported_nanos,
        "claude_calc_nanos": entry.calc_nanos, "claude_ccusage_nanos": entry.ccusage_nanos,
        "claude_unpriced": entry.unpriced, "claude_ccusage_unpriced": entry.ccusage_unpriced,
    }  # fmt: skip
    return row


def session_ids(cursors: Iterable[Cursor]) -> set[str]:
    return {cursor.session_id for cursor in cursors if cursor.session_id}
