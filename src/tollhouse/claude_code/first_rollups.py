"""Report roll-ups built during a first import, from sums the parsing processes already made.

On a new database the first report would otherwise aggregate every imported response in SQL
after the import (a sort of a quarter of a million rows: over half a second, on the critical
path). Instead each parsing process sums its file's responses per session, project, cwd, model,
fast flag and UTC quarter-hour (``file_sums``, where the rows are already in memory), and the
importer merges those sums (``FirstRollups``) and derives every roll-up kind a report needs from
them: ``session``, ``hour`` and ``day:<zone>`` (see :mod:`tollhouse.claude_code.rollups`).

The sums are exact where SQL would group the same rows: a quarter-hour lies inside one UTC hour,
and inside one local day unless the zone's offset changes within it or it straddles local
midnight (checked per quarter). Sessions where that does not hold, or that share a response with
another file (a cross-file duplicate decides which copy counts only later), are left to the SQL
roll-up: they are marked changed, so the first report recomputes just those.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from tollhouse.claude_code.lite import (
    DAY_MS,
    HOUR_MS,
    NO_REPORTED_COST,
    ROW_PARAMS,
    changed_top,
    mark_changed,
    set_mark,
)
from tollhouse.claude_code.rollups import AGG_VALUES, offset_ms

QUARTER_MS = 900_000
# (session, project dir, cwd or "", model or "", fast, k1, k2): a roll-up group (``claude_agg``'s key)
GroupKey = tuple[str, str, str, str, int, int, int]
# AGG_VALUES in order: n, four token sums, five cost sums, four "missing price" counts, min seq,
# min and max instant
Sums = list[int]
# One file's sums for each kind, and the sessions whose rows do not all fall in one group
FileSums = tuple[dict[str, dict[GroupKey, Sums]], set[str]]

_P = {name: n for n, name in enumerate(ROW_PARAMS)}
_SEQ, _TS, _CWD, _DIR, _SESSION, _MODEL = (
    _P["seq"], _P["ts_ms"], _P["cwd"], _P["project_dir"], _P["session_id"], _P["model"]
)  # fmt: skip
_IN, _CR, _W5, _W1, _OUT, _FAST = (
    _P["input"], _P["cache_read"], _P["cache_write_5m"], _P["cache_write_1h"], _P["output"], _P["fast"]
)  # fmt: skip
_REPORTED, _CALC, _CCUSAGE, _UNPRICED, _CC_UNPRICED = (
    _P["reported"], _P["calc"], _P["ccusage"], _P["unpriced"], _P["ccusage_unpriced"]
)  # fmt: skip
_ADDITIVE = 14  # the leading sums; then min seq, min instant, max instant
_UNKNOWN: Any = object()


class Summer:
    """Sums a file's rows per roll-up group of each kind; made once per import and used in every
    parsing process (each keeps its own cache of local days per quarter-hour)."""

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = tuple(dict.fromkeys(kinds))
        days = [kind for kind in self.kinds if kind.startswith("day:")]
        self.zones = {kind: ZoneInfo(kind.removeprefix("day:")) for kind in days}
        self.days: dict[str, dict[int, int | None]] = {kind: {} for kind in self.zones}

    def file_sums(self, rows: Sequence[tuple[int, bool, tuple[Any, ...]]]) -> FileSums:
        """One file's responses (``line_rows.FileRows.rows``: the copies that file keeps), summed."""
        left: set[str] = set()
        return {kind: self._kind_sums(kind, rows, left) for kind in self.kinds}, left

    def _kind_sums(
        self, kind: str, rows: Sequence[tuple[int, bool, tuple[Any, ...]]], left: set[str]
    ) -> dict[GroupKey, Sums]:
        groups: dict[GroupKey, list[tuple[Any, ...]]] = {}
        days = self.days.get(kind)
        for _, _, p in rows:
            ts = p[_TS]
            if kind == "session":
                k1, k2 = 0, 0
            elif days is None:  # hour
                k1, k2 = ts // HOUR_MS, 1 if ts % HOUR_MS == 0 else 0
            else:
                quarter = ts // QUARTER_MS
                day = days.get(quarter, _UNKNOWN)
                if day is _UNKNOWN:
                    day = days[quarter] = local_day(self.zones[kind], quarter)
                if day is None:
                    left.add(p[_SESSION])
                    continue
                k1, k2 = day, 0
            key = (p[_SESSION], p[_DIR], p[_CWD] or "", p[_MODEL] or "", p[_FAST], k1, k2)
            members = groups.get(key)
            if members is None:
                groups[key] = [p]
            else:
                members.append(p)
        return {key: _sums(members) for key, members in groups.items()}


def _sums(members: list[tuple[Any, ...]]) -> Sums:
    columns = tuple(zip(*members, strict=True))  # column-wise: the sums below run in C
    calc, ccusage, reported = columns[_CALC], columns[_CCUSAGE], columns[_REPORTED]
    c_calc, c_ccusage = sum(calc), sum(ccusage)
    if reported.count(NO_REPORTED_COST) == len(members):  # no costUSD anywhere: the common case
        display, auto, auto_ccusage = 0, c_calc, c_ccusage
    else:
        display = auto = auto_ccusage = 0
        for r, c, cc in zip(reported, calc, ccusage, strict=True):
            known = r != NO_REPORTED_COST
            display += r if known else 0
            auto += r if known else c
            auto_ccusage += r if known else cc
    missing = [0, 0, 0, 0]
    if any(columns[_UNPRICED]) or any(columns[_CC_UNPRICED]):
        for p in members:
            if p[_IN] + p[_CR] + p[_W5] + p[_W1] + p[_OUT] <= 0:
                continue
            unknown = p[_REPORTED] == NO_REPORTED_COST
            if p[_UNPRICED]:
                missing[0] += 1
                missing[2] += unknown
            if p[_CC_UNPRICED]:
                missing[1] += 1
                missing[3] += unknown
    ts = columns[_TS]
    return [
        len(members), sum(columns[_IN]), sum(columns[_OUT]), sum(columns[_W5]) + sum(columns[_W1]),
        sum(columns[_CR]), c_calc, c_ccusage, display, auto, auto_ccusage, *missing,
        min(columns[_SEQ]), min(ts), max(ts),
    ]  # fmt: skip


def _merge(into: Sums, other: Sums) -> None:
    for n in range(_ADDITIVE):
        into[n] += other[n]
    into[14] = min(into[14], other[14])
    into[15] = min(into[15], other[15])
    into[16] = max(into[16], other[16])


class FirstRollups:
    """The merged sums of one first import, written out as roll-ups at its end."""

    def __init__(self, kinds: Sequence[str]) -> None:
        self.summer = Summer(kinds)
        self.groups: dict[str, dict[GroupKey, Sums]] = {kind: {} for kind in self.summer.kinds}
        self.left_to_sql: set[str] = set()  # sessions the SQL roll-up must recompute

    def add(self, sums: FileSums) -> None:
        by_kind, left = sums
        self.left_to_sql |= left
        for kind, found in by_kind.items():
            groups = self.groups[kind]
            shared = groups.keys() & found.keys()  # a session's files (subagents) share groups
            for key in shared:
                _merge(groups[key], found.pop(key))
            groups.update(found)

    def leave_to_sql(self, session: str) -> None:
        self.left_to_sql.add(session)

    def write(self, conn: sqlite3.Connection) -> None:
        """Every kind's roll-up rows, marked current; the sessions left to SQL marked changed.
        Runs inside the import's transaction, after its last ``claude_dirty`` row."""
        left = self.left_to_sql
        top = changed_top(conn)
        columns = ", ".join(AGG_VALUES)
        marks = ", ".join("?" * (8 + len(AGG_VALUES)))
        insert = (
            "INSERT INTO claude_agg (session_id, kind, k1, k2, project_dir, cwd, model, fast,"  # noqa: S608
            f" {columns}) VALUES ({marks})"
        )
        for kind, groups in self.groups.items():
            conn.execute("DELETE FROM claude_agg WHERE kind = ?", (kind,))
            rows = [
                (session, kind, k1, k2, project_dir, cwd, model, fast, *values)
                for (session, project_dir, cwd, model, fast, k1, k2), values in groups.items()
                if session not in left
            ]
            rows.sort()  # in primary-key order: appended to its index, not inserted all over it
            conn.executemany(insert, rows)
            set_mark(conn, kind, top)
        mark_changed(conn, left)


def local_day(zone: ZoneInfo, quarter: int) -> int | None:
    """The local day (as ``rollups``' SQL numbers it) of every instant in the quarter-hour, or
    None when they are not all in one day under one offset."""
    first = quarter * QUARTER_MS
    last = first + QUARTER_MS - 1
    start, end = offset_ms(zone, first), offset_ms(zone, last)
    if start != end or first + start < 0:
        return None
    day = (first + start) // DAY_MS
    return day if (last + end) // DAY_MS == day else None
