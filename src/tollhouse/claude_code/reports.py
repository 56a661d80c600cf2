"""ccusage-compatible usage reports (daily, weekly, monthly, session), read from the database.

The heavy lifting is SQL over the ledger's Claude Code rows (one per de-duplicated response): days are
cut in the requested zone inside the query with a ``CASE`` over the zone's UTC offsets in the
data's range (exact across DST, portable to SQLite), so a report aggregates a few hundred
rows in Python however many responses were imported. Shapes and field names follow ccusage
20.0.24's ``--json`` output so scripts written for it keep working; money stays integer
nano-dollars until :func:`usd`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tollhouse.claude_code.lite import DAY_MS, CostMode
from tollhouse.claude_code.rollups import zone_offsets
from tollhouse.pricing.tiers import TierRule

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.sql.base import ReadOnlyColumnCollection

SYNTHETIC_MODEL = "<synthetic>"
_EPOCH_DAY = date(1970, 1, 1)
__all__ = ["DAY_MS", "CostMode", "zone_offsets"]


def _entries() -> ReadOnlyColumnCollection[str, ColumnElement[Any]]:
    from tollhouse.claude_code.store import entries

    return entries().c


@dataclass(frozen=True, slots=True)
class ReportOptions:
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    since: date | None = None
    until: date | None = None
    project: str | None = None
    mode: str = CostMode.AUTO
    tier_rule: TierRule = TierRule.ANTHROPIC
    start_of_week: int = 6  # date.weekday(): Monday 0 … Sunday 6 (ccusage's default)


@dataclass(slots=True)
class Tokens:
    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    cost_nanos: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read

    def add(self, other: Tokens) -> None:
        self.input += other.input
        self.output += other.output
        self.cache_creation += other.cache_creation
        self.cache_read += other.cache_read
        self.cost_nanos += other.cost_nanos

    def json(self, cost_key: str) -> dict[str, Any]:
        return {
            "inputTokens": self.input,
            "outputTokens": self.output,
            "cacheCreationTokens": self.cache_creation,
            "cacheReadTokens": self.cache_read,
            "totalTokens": self.total,
            cost_key: usd(self.cost_nanos),
        }


@dataclass(slots=True)
class ModelUsage:
    model: str
    first_seq: int
    tokens: Tokens = field(default_factory=Tokens)
    missing_pricing: bool = False

    def json(self) -> dict[str, Any]:
        out = {"modelName": self.model, **self.tokens.json("cost")}
        out.pop("totalTokens")
        if self.missing_pricing:
            out["missingPricing"] = True
        return out


@dataclass(slots=True)
class Row:
    """One line of a report: a day, week, month or session, with its per-model breakdown."""

    key: str
    tokens: Tokens = field(default_factory=Tokens)
    models: dict[str, ModelUsage] = field(default_factory=dict)
    first_seq: int = 0
    project: str | None = None
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, model: str | None, tokens: Tokens, first_seq: int, missing: bool) -> None:
        self.tokens.add(tokens)
        if model is None:
            return
        usage = self.models.get(model)
        if usage is None:
            usage = self.models[model] = ModelUsage(model, first_seq)
        usage.first_seq = min(usage.first_seq, first_seq)
        usage.tokens.add(tokens)
        usage.missing_pricing = usage.missing_pricing or missing

    def models_used(self) -> list[str]:
        return [m.model for m in sorted(self.models.values(), key=lambda m: m.first_seq)]

    def breakdowns(self) -> list[ModelUsage]:
        ordered = sorted(self.models.values(), key=lambda m: m.first_seq)
        return sorted(ordered, key=lambda m: m.tokens.cost_nanos, reverse=True)

    def json(self, key_name: str) -> dict[str, Any]:
        out: dict[str, Any] = {key_name: self.key, **self.tokens.json("totalCost")}
        out["modelsUsed"] = self.models_used()
        out["modelBreakdowns"] = [m.json() for m in self.breakdowns()]
        if self.project is not None:
            out["project"] = self.project
        return out


def usd(nanos: int) -> float:
    """Floats appear only here, at the JSON edge."""
    return nanos / 1e9


def cost_column(mode: str, tier_rule: TierRule) -> ColumnElement[Any]:
    from sqlalchemy import func

    _E = _entries()
    calculated = _E.ccusage_cost_nanos if tier_rule is TierRule.CCUSAGE else _E.calc_cost_nanos
    if mode == CostMode.CALCULATE:
        return calculated
    if mode == CostMode.DISPLAY:
        return func.coalesce(_E.reported_cost_nanos, 0)
    return func.coalesce(_E.reported_cost_nanos, calculated)


def missing_column(options: ReportOptions) -> ColumnElement[Any]:
    """1 where a token-carrying entry had no price and its cost was computed (ccusage's flag)."""
    from sqlalchemy import Boolean, and_, case, cast, literal

    _E = _entries()
    if options.mode == CostMode.DISPLAY:
        return literal(0)
    flag = _E.ccusage_unpriced if options.tier_rule is TierRule.CCUSAGE else _E.unpriced
    tokens = _E.input_tokens + _E.output_tokens + _E.cache_creation_tokens + _E.cache_read_tokens
    computed = (
        literal(True, Boolean) if options.mode == CostMode.CALCULATE else _E.reported_cost_nanos.is_(None)
    )
    return case((and_(cast(flag, Boolean), tokens > 0, computed), 1), else_=0)


def sums(options: ReportOptions) -> list[ColumnElement[Any]]:
    from sqlalchemy import func

    _E = _entries()
    return [
        func.sum(_E.input_tokens),
        func.sum(_E.output_tokens),
        func.sum(_E.cache_creation_tokens),
        func.sum(_E.cache_read_tokens),
        func.sum(cost_column(options.mode, options.tier_rule)),
        func.min(_E.seq),
        func.max(missing_column(options)),
    ]


def tokens_of(values: Iterable[Any]) -> Tokens:
    i, o, cc, cr, cost = (int(v or 0) for v in values)
    return Tokens(i, o, cc, cr, cost)


def model_label(model: str | None, fast: Any) -> str | None:
    """ccusage names fast-mode usage ``<model>-fast`` and leaves ``<synthetic>`` out of lists."""
    if not model or model == SYNTHETIC_MODEL:
        return None
    return f"{model}-fast" if fast else model


def project_filter(project: str | None) -> ColumnElement[bool] | None:
    from sqlalchemy import or_

    _E = _entries()
    if not project:
        return None
    return or_(_E.project_dir == project, _E.cwd == project)


async def data_range(engine: AsyncEngine, options: ReportOptions) -> tuple[int, int] | None:
    from sqlalchemy import func, select

    _E = _entries()
    query = select(func.min(_E.ts_ms), func.max(_E.ts_ms))
    where = project_filter(options.project)
    if where is not None:
        query = query.where(where)
    async with engine.connect() as conn:
        low, high = (await conn.execute(query)).one()
    return None if low is None else (int(low), int(high))


def local_day(zone: ZoneInfo, low_ms: int, high_ms: int) -> ColumnElement[Any]:
    """Days since 1970-01-01 in ``zone``, as SQL: UTC ms plus the zone's offset at that instant."""
    from sqlalchemy import case

    pieces = zone_offsets(zone, low_ms, high_ms)
    ts = _entries().ts_ms
    if len(pieces) == 1:
        shifted = ts + pieces[0][1]
    else:
        shifted = ts + case(*((ts < until, offset) for until, offset in pieces[:-1]), else_=pieces[-1][1])
    return shifted // DAY_MS


def day_text(day_number: int) -> str:
    return (_EPOCH_DAY + timedelta(days=int(day_number))).isoformat()


def in_range(day: date, options: ReportOptions) -> bool:
    return (options.since is None or day >= options.since) and (options.until is None or day <= options.until)


async def daily_rows(
    engine: AsyncEngine | sqlite3.Connection, options: ReportOptions, *, by_project: bool = False
) -> list[Row]:
    """One row per local day (and per project directory with ``by_project``), oldest first."""
    if isinstance(engine, sqlite3.Connection):
        from tollhouse.claude_code import rollups

        conn = engine
        keys = ["k1", "project_dir"] if by_project else ["k1"]
        records = rollups.rollup_query(
            conn, f"day:{options.zone.key}", keys, [], mode=options.mode, tier_rule=options.tier_rule.value,
            project=options.project,
        )  # fmt: skip
        return assemble_daily(records, options, by_project=by_project)
    from sqlalchemy import select

    _E = _entries()
    span = await data_range(engine, options)
    if span is None:
        return []
    day = local_day(options.zone, *span).label("day")
    group: list[Any] = [day, _E.project_dir] if by_project else [day]
    query = select(*group, _E.model, _E.fast, *sums(options)).group_by(*group, _E.model, _E.fast)
    where = project_filter(options.project)
    if where is not None:
        query = query.where(where)
    async with engine.connect() as sa_conn:
        return assemble_daily(
            [tuple(r) for r in await sa_conn.execute(query)], options, by_project=by_project
        )


def assemble_daily(
    records: Iterable[tuple[Any, ...]], options: ReportOptions, *, by_project: bool
) -> list[Row]:
    width = 2 if by_project else 1
    rows: dict[tuple[Any, ...], Row] = {}
    for values in records:
        group, (model, fast, *numbers) = values[:width], values[width:]
        text = day_text(group[0])
        if not in_range(date.fromisoformat(text), options):
            continue
        row = rows.get(group)
        if row is None:
            row = rows[group] = Row(text, project=group[1] if by_project else None, first_seq=numbers[5])
        row.add(model_label(model, fast), tokens_of(numbers[:5]), int(numbers[5]), bool(numbers[6]))
    return sorted(rows.values(), key=lambda r: (r.project or "", r.key))


def bucket_rows(daily: list[Row], key: Callable[[date], str]) -> list[Row]:
    """Weeks or months from days, as ccusage builds them (models in first-seen order)."""
    buckets: dict[str, Row] = {}
    for day in sorted(daily, key=lambda r: r.key):
        name = key(date.fromisoformat(day.key))
        bucket = buckets.get(name)
        if bucket is None:
            bucket = buckets[name] = Row(name)
        bucket.tokens.add(day.tokens)
        for model in day.models_used():
            usage = day.models[model]
            target = bucket.models.get(model)
            if target is None:
                target = bucket.models[model] = ModelUsage(model, len(bucket.models))
            target.tokens.add(usage.tokens)
            target.missing_pricing = target.missing_pricing or usage.missing_pricing
    return [buckets[name] for name in sorted(buckets)]


def week_start(start_of_week: int) -> Callable[[date], str]:
    def key(day: date) -> str:
        return (day - timedelta(days=(day.weekday() - start_of_week) % 7)).isoformat()

    return key


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


async def session_rows(engine: AsyncEngine | sqlite3.Connection, options: ReportOptions) -> list[Row]:
    """One row per (project directory, session), most expensive first (ccusage's order)."""
    if isinstance(engine, sqlite3.Connection):
        from tollhouse.claude_code import rollups

        conn = engine
        records = rollups.rollup_query(
            conn, "session", ["project_dir", "session_id"], ["min(min_ts)", "max(max_ts)"], mode=options.mode,
            tier_rule=options.tier_rule.value, project=options.project,
        )  # fmt: skip
        return assemble_sessions(records, options)
    from sqlalchemy import func, select

    _E = _entries()
    query = select(
        _E.project_dir,
        _E.session_id,
        _E.model,
        _E.fast,
        *sums(options),
        func.min(_E.ts_ms),
        func.max(_E.ts_ms),
    ).group_by(_E.project_dir, _E.session_id, _E.model, _E.fast)
    where = project_filter(options.project)
    if where is not None:
        query = query.where(where)
    async with engine.connect() as sa_conn:
        return assemble_sessions([tuple(r) for r in await sa_conn.execute(query)], options)


def assemble_sessions(records: Iterable[tuple[Any, ...]], options: ReportOptions) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    for project_dir, session_id, model, fast, *numbers in records:
        row = rows.get((project_dir, session_id))
        first_ms, last_ms = int(numbers[7]), int(numbers[8])
        if row is None:
            row = rows[(project_dir, session_id)] = Row(
                session_id,
                project=project_dir,
                first_seq=int(numbers[5]),
                first_ms=first_ms,
                last_ms=last_ms,
            )
        row.first_seq = min(row.first_seq, int(numbers[5]))
        row.first_ms = min(row.first_ms or first_ms, first_ms)
        row.last_ms = max(row.last_ms or last_ms, last_ms)
        row.add(model_label(model, fast), tokens_of(numbers[:5]), int(numbers[5]), bool(numbers[6]))
    kept = [
        row
        for row in rows.values()
        if row.tokens.total > 0 and in_range(local_date(row.last_ms or 0, options.zone), options)
    ]
    kept.sort(key=lambda r: r.first_seq)
    kept.sort(key=lambda r: r.tokens.cost_nanos, reverse=True)
    return kept


def local_date(ms: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).date()


def iso_ms(ms: int) -> str:
    """ccusage's timestamp form: UTC, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{ms % 1000:03d}Z"


def session_json(row: Row) -> dict[str, Any]:
    out = row.json("sessionId")
    out.pop("project", None)
    out["projectPath"] = row.project
    out["firstActivity"] = iso_ms(row.first_ms or 0)
    out["lastActivity"] = iso_ms(row.last_ms or 0)
    return out


def totals_json(rows: Iterable[Row]) -> dict[str, Any]:
    total = Tokens()
    unpriced: set[str] = set()
    for row in rows:
        total.add(row.tokens)
        unpriced.update(m.model for m in row.models.values() if m.missing_pricing)
    out = total.json("totalCost")
    if unpriced:
        out["unpricedModels"] = sorted(unpriced)
    return out


def period_report(name: str, rows: list[Row]) -> dict[str, Any]:
    key = {"daily": "date", "weekly": "week", "monthly": "month"}[name]
    return {name: [row.json(key) for row in rows], "totals": totals_json(rows)}


def instances_report(rows: list[Row]) -> dict[str, Any]:
    projects: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        projects.setdefault(row.project or "unknown", []).append(row.json("date"))
    return {"projects": dict(sorted(projects.items())), "totals": totals_json(rows)}


def sessions_report(rows: list[Row]) -> dict[str, Any]:
    return {"sessions": [session_json(row) for row in rows], "totals": totals_json(rows)}
