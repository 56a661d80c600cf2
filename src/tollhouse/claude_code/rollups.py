"""Report roll-ups on SQLite (``claude_agg``): per session and model, by UTC hour, by local day
per time zone, by session. Every import appends the sessions it changed to ``claude_dirty``; a
roll-up kind recomputes only those sessions from the ledger's Claude Code rows the next time a
report needs it, so a report after a small append reads a few thousand rows, not every response.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tollhouse.claude_code.lite import DAY_MS, HOUR_MS, IN_CHUNK, SEQ_KIND, changed_top, mark, set_mark

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


def offset_ms(zone: ZoneInfo, ms: int) -> int:
    """The zone's UTC offset at an instant, in milliseconds."""
    delta = datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).utcoffset()
    return int(delta.total_seconds() * 1000) if delta is not None else 0


def zone_offsets(zone: ZoneInfo, low_ms: int, high_ms: int) -> list[tuple[int, int]]:
    """[(until_ms, offset_ms)]: the zone's UTC offset for instants before each ``until``."""
    pieces: list[tuple[int, int]] = []
    step = 3_600_000
    current = offset_ms(zone, low_ms)
    at = low_ms
    while at < high_ms:
        nxt = min(at + step, high_ms)
        if offset_ms(zone, nxt) != current:
            lo, hi = at, nxt  # the change happened in (lo, hi]: find the first ms with the new offset
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset_ms(zone, mid) == current else (lo, mid)
            pieces.append((hi, current))
            current = offset_ms(zone, hi)
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
    folded = mark(conn, kind)
    if folded is not None and folded >= changed_top(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        top, folded = changed_top(conn), mark(conn, kind)
        if folded is None:
            _aggregate(conn, kind, None)
        elif folded < top:
            changed = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT session_id FROM claude_dirty WHERE id > ? AND id <= ?", (folded, top)
                )
            ]
            if len(changed) > _FULL_REBUILD_SESSIONS:
                _aggregate(conn, kind, None)
            else:
                for start in range(0, len(changed), IN_CHUNK):
                    _aggregate(conn, kind, changed[start : start + IN_CHUNK])
        set_mark(conn, kind, top)
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
