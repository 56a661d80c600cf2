"""``/api/stats``: Claude Code totals from the ledger, activity from the session index, a forecast.

Costs and tokens are SQL aggregates over the imported ledger rows, bucketed by UTC hour so the
days can be cut in the configured zone in Python (exact across DST; SQLite has no zones).
The 30-day forecast is a least-squares line through the last 30 complete days; its R² is the
confidence and the residual spread gives a 95 % interval for the 30-day cost.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.analytics.machine import hour_bucket, parse_hour
from tollhouse.claude_code.sessions import Session
from tollhouse.db.tables import ledger
from tollhouse.ledger.queries import MODEL, usage_sums

SOURCE = "claude-code"
FORECAST_DAYS = 30


@dataclass(slots=True)
class Usage:
    """Token and cost sums; costs stay integer nano-dollars until the JSON edge."""

    calls: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost_nanos: int = 0

    @property
    def tokens(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    @property
    def cost(self) -> float:
        return self.cost_nanos / 1e9

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_write += other.cache_write
        self.cost_nanos += other.cost_nanos


@dataclass(slots=True)
class SessionUsage:
    total: Usage = field(default_factory=Usage)
    by_model: dict[str, Usage] = field(default_factory=dict)

    @property
    def main_model(self) -> str | None:
        if not self.by_model:
            return None
        return max(self.by_model.items(), key=lambda item: (item[1].calls, item[1].cost_nanos))[0]


def _usage(row: Any) -> Usage:
    return Usage(
        int(row.calls),
        int(row.input),
        int(row.output),
        int(row.cache_read),
        int(row.cache_write),
        int(row.cost),
    )


async def usage_by_session(engine: AsyncEngine) -> dict[str, SessionUsage]:
    query = (
        select(ledger.c.session_id, MODEL.label("model"), *usage_sums())
        .where(ledger.c.source == SOURCE, ledger.c.session_id.is_not(None))
        .group_by(ledger.c.session_id, MODEL)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    result: dict[str, SessionUsage] = defaultdict(SessionUsage)
    for row in rows:
        usage = _usage(row)
        entry = result[row.session_id]
        entry.by_model[row.model] = usage
        entry.total.add(usage)
    return dict(result)


@dataclass(frozen=True, slots=True)
class HourRow:
    hour: datetime
    model: str
    usage: Usage


async def usage_by_hour(engine: AsyncEngine) -> list[HourRow]:
    bucket = hour_bucket(engine)
    query = select(bucket.label("hour"), MODEL.label("model"), *usage_sums()).where(ledger.c.source == SOURCE)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.group_by(bucket, MODEL))).all()
    return [HourRow(parse_hour(row.hour), row.model, _usage(row)) for row in rows if row.hour]


async def usage_by_project(engine: AsyncEngine) -> dict[str, Usage]:
    query = (
        select(ledger.c.project_id, *usage_sums())
        .where(ledger.c.source == SOURCE)
        .group_by(ledger.c.project_id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {row.project_id: _usage(row) for row in rows}


@dataclass(frozen=True, slots=True)
class Forecast:
    daily: list[float]
    total: float
    low: float
    high: float
    r2: float
    slope: float


def linear_forecast(history: Sequence[float], days: int = FORECAST_DAYS) -> Forecast:
    """Fit ``y = a + b·x`` to ``history`` (one value per day) and extend it ``days`` ahead.

    Negative predictions are clipped to zero. Confidence is R² (0 when fewer than 3 points
    or a flat zero history gives nothing to fit); the interval is ±1.96 x sigma x sqrt(days) around the sum.
    """
    n = len(history)
    if n == 0:
        return Forecast([0.0] * days, 0.0, 0.0, 0.0, 0.0, 0.0)
    mean_x = (n - 1) / 2
    mean_y = sum(history) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(history))
    slope = sxy / sxx if sxx else 0.0
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in enumerate(history)]
    ss_res = sum(r * r for r in residuals)
    ss_tot = sum((y - mean_y) ** 2 for y in history)
    if n < 3 or not any(history):
        r2 = 0.0
    elif ss_tot == 0:
        r2 = 1.0
    else:
        r2 = max(0.0, min(1.0, 1 - ss_res / ss_tot))
    daily = [max(0.0, intercept + slope * (n + i)) for i in range(days)]
    total = sum(daily)
    sigma = math.sqrt(ss_res / (n - 2)) if n > 2 else 0.0
    spread = 1.96 * sigma * math.sqrt(days)
    return Forecast(daily, total, max(0.0, total - spread), total + spread, r2, slope)


def _local_days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def build_stats(
    *,
    sessions: Mapping[str, Session],
    hours: Iterable[HourRow],
    projects: Mapping[str, Usage],
    zone: ZoneInfo,
    now: datetime,
    mcp_servers: int,
    stats_cache: Mapping[str, Any] | None,
) -> dict[str, Any]:
    today = now.astimezone(zone).date()
    month_start = today.replace(day=1)
    total = Usage()
    by_model: dict[str, Usage] = defaultdict(Usage)
    daily_cost: dict[date, int] = Counter()
    daily_tokens: dict[date, int] = Counter()
    daily_model_tokens: dict[date, dict[str, int]] = defaultdict(Counter)
    month_nanos = 0
    for row in hours:
        day = row.hour.astimezone(zone).date()
        total.add(row.usage)
        by_model[row.model].add(row.usage)
        daily_cost[day] += row.usage.cost_nanos
        daily_tokens[day] += row.usage.tokens
        daily_model_tokens[day][row.model] += row.usage.tokens
        if day >= month_start:
            month_nanos += row.usage.cost_nanos

    activity: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    active_sessions: dict[date, set[str]] = defaultdict(set)
    hour_counts: Counter[str] = Counter()
    for session in sessions.values():
        for summary in session.files:
            for stamp, (messages, tools) in summary.activity.items():
                local = parse_hour(stamp).astimezone(zone)
                activity[local.date()][0] += messages
                activity[local.date()][1] += tools
                active_sessions[local.date()].add(session.id)
                hour_counts[str(local.hour)] += messages

    window = _local_days(today, FORECAST_DAYS)
    fit_days = _local_days(today - timedelta(days=1), FORECAST_DAYS)
    cost_forecast = linear_forecast([daily_cost.get(d, 0) / 1e9 for d in fit_days])
    token_forecast = linear_forecast([float(daily_tokens.get(d, 0)) for d in fit_days])
    longest = max(sessions.values(), key=lambda s: s.messages, default=None)
    firsts = [s.first_ts for s in sessions.values() if s.first_ts is not None]
    project_total = sum(u.cost_nanos for u in projects.values())
    top_projects = sorted(projects.items(), key=lambda item: item[1].cost_nanos, reverse=True)[:5]
    cache = stats_cache or {}
    return {
        "version": cache.get("version", 2),
        "lastComputedDate": today.isoformat(),
        "firstSessionDate": iso(min(firsts)) if firsts else None,
        "totalSessions": len(sessions),
        "totalMessages": sum(s.messages for s in sessions.values()),
        "totalCalls": total.calls,
        "totalTokens": total.tokens,
        "totalCost": total.cost,
        "thisMonthCost": month_nanos / 1e9,
        "avgSessionCost": total.cost_nanos / len(sessions) / 1e9 if sessions else 0.0,
        "cacheHitRatio": total.cache_read / (total.cache_read + total.cache_write + total.input)
        if total.cache_read
        else 0.0,
        "mcpServersCount": mcp_servers,
        "mostUsedModel": max(by_model.items(), key=lambda item: item[1].calls)[0] if by_model else None,
        "totalSpeculationTimeSavedMs": int(cache.get("totalSpeculationTimeSavedMs") or 0),
        "longestSession": {
            "sessionId": longest.id,
            "messageCount": longest.messages,
            "date": iso(longest.last_ts),
        }
        if longest
        else None,
        "modelUsage": {
            model: {
                "inputTokens": u.input,
                "outputTokens": u.output,
                "cacheCreationInputTokens": u.cache_write,
                "cacheReadInputTokens": u.cache_read,
                "costUsd": u.cost,
                "calls": u.calls,
                "contextWindow": 0,
                "maxOutputTokens": 0,
                "webSearchRequests": 0,
            }
            for model, u in sorted(by_model.items())
        },
        "hourCounts": dict(sorted(hour_counts.items(), key=lambda item: int(item[0]))),
        "dailyActivity": [
            {
                "date": day.isoformat(),
                "sessionCount": len(active_sessions[day]),
                "messageCount": counts[0],
                "toolCallCount": counts[1],
            }
            for day, counts in sorted(activity.items())
        ],
        "dailyModelTokens": [
            {"date": day.isoformat(), "tokensByModel": dict(tokens)}
            for day, tokens in sorted(daily_model_tokens.items())
        ],
        "dailyTokens30d": [daily_tokens.get(d, 0) for d in window],
        "dailyCost30d": [daily_cost.get(d, 0) / 1e9 for d in window],
        "forecastTokens30d": [round(v) for v in token_forecast.daily],
        "forecastConfidence": round(cost_forecast.r2, 4),
        "forecastCost30d": cost_forecast.total,
        "forecast": {
            "method": "linear_regression",
            "basedOnDays": FORECAST_DAYS,
            "from": fit_days[0].isoformat(),
            "to": fit_days[-1].isoformat(),
            "r2": cost_forecast.r2,
            "tokensR2": token_forecast.r2,
            "dailyCostTrend": cost_forecast.slope,
            "costLow": cost_forecast.low,
            "costHigh": cost_forecast.high,
            "interval": 0.95,
            "dailyCost": cost_forecast.daily,
        },
        "projectsByCost": [
            {
                "project": project,
                "cost": usage.cost,
                "percentage": round(100 * usage.cost_nanos / project_total, 2) if project_total else 0.0,
            }
            for project, usage in top_projects
        ],
    }


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None
