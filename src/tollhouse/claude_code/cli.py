"""``tollhouse claude daily|weekly|monthly|session|blocks``: ccusage-compatible reports.

Each command first brings the database up to date with the transcripts (an incremental scan:
unchanged files cost a ``stat``), then answers from SQL. ``--json`` prints ccusage 20.0.24's
structure and field names, so scripts written for ccusage work unchanged.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.claude_code import blocks as block_reports
from tollhouse.claude_code import render, reports
from tollhouse.claude_code.discovery import claude_roots
from tollhouse.claude_code.importer import ClaudeImporter, ScanResult
from tollhouse.claude_code.parser import CostMode
from tollhouse.db.engine import MIGRATIONS_DIR, create_engine, migrate
from tollhouse.errors import ConfigError
from tollhouse.pricing import TierRule, load_price_table
from tollhouse.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    for pattern in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r} is not a date (YYYYMMDD)")


def _options(command: F) -> F:
    decorators = [
        click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="TOML config file."),
        click.option("--since", "-s", callback=_day, help="First day to include (YYYYMMDD)."),
        click.option("--until", "-u", callback=_day, help="Last day to include (YYYYMMDD)."),
        click.option("--timezone", "-z", help="IANA time zone for days (default: settings `timezone`)."),
        click.option("--project", "-p", help="Only this project (its directory name or its path)."),
        click.option("--breakdown", "-b", is_flag=True, help="Show a line per model."),
        click.option("--mode", "-m", type=click.Choice(CostMode.ALL), help="Cost mode (default: settings)."),
        click.option("--json", "-j", "as_json", is_flag=True, help="ccusage-compatible JSON."),
        click.option(
            "--tier-rule",
            type=click.Choice([r.value for r in TierRule]),
            help="Long-context pricing: `anthropic` (whole request) or `ccusage` (ccusage's exact numbers).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.group()
def claude() -> None:
    """Claude Code usage reports (ccusage-compatible), from the local transcripts."""


async def ensure_schema(engine: AsyncEngine) -> None:
    """Migrate unless already at the newest revision (alembic costs half a second to import)."""
    names = [p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py")]
    try:
        async with engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:
        current = None
    if not names or current != max(names):
        await migrate(engine)


def _context(kwargs: dict[str, Any]) -> tuple[Settings, reports.ReportOptions]:
    try:
        settings = load_settings(kwargs.get("config"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        zone = ZoneInfo(kwargs.get("timezone") or settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(
            f"unknown time zone {kwargs.get('timezone')!r}", param_hint="--timezone"
        ) from exc
    options = reports.ReportOptions(
        zone=zone,
        since=kwargs.get("since"),
        until=kwargs.get("until"),
        project=kwargs.get("project"),
        mode=kwargs.get("mode") or settings.claude_code.cost_mode,
        tier_rule=TierRule(kwargs.get("tier_rule") or settings.pricing.long_context_rule),
    )
    return settings, options


def _run(settings: Settings, report: Callable[[AsyncEngine], Awaitable[str]]) -> None:
    async def go() -> str:
        engine = create_engine(settings.resolved_database_url)
        try:
            await ensure_schema(engine)
            prices = load_price_table(
                {name: o.model_dump(exclude_none=True) for name, o in settings.pricing.overrides.items()}
            )
            roots = claude_roots(settings.claude_code.config_dirs)
            importer = ClaudeImporter(engine, prices, roots, cost_mode=settings.claude_code.cost_mode)
            _warn(await importer.scan())
            return await report(engine)
        finally:
            await engine.dispose()

    click.echo(asyncio.run(go()))


def _warn(result: ScanResult) -> None:
    if result.malformed_lines:
        print(f"note: skipped {result.malformed_lines} malformed transcript line(s)", file=sys.stderr)
    for path in result.unreadable_files:
        print(f"note: cannot read {path}", file=sys.stderr)


def _dump(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _period_command(name: str, title: str, first: str) -> Callable[..., None]:
    def command(**kwargs: Any) -> None:
        settings, options = _context(kwargs)
        if kwargs.get("start_of_week"):
            options = replace(options, start_of_week=_WEEKDAYS.index(kwargs["start_of_week"]))
        instances = bool(kwargs.get("instances"))

        async def report(engine: AsyncEngine) -> str:
            rows = await reports.daily_rows(engine, options, by_project=instances)
            if name == "weekly":
                rows = reports.bucket_rows(rows, reports.week_start(options.start_of_week))
            elif name == "monthly":
                rows = reports.bucket_rows(rows, reports.month_of)
            if kwargs["as_json"]:
                return _dump(
                    reports.instances_report(rows) if instances else reports.period_report(name, rows)
                )
            return render.usage_table(_title(title, options), first, rows, breakdown=kwargs["breakdown"])

        _run(settings, report)

    return command


def _title(title: str, options: reports.ReportOptions) -> str:
    return (
        f"Claude Code Token Usage Report - {title}\n"
        f"(time zone {options.zone.key}, cost mode {options.mode}, "
        f"long-context rule {options.tier_rule.value})"
    )


daily = claude.command("daily", help="Usage and cost per day.")(
    click.option("--instances", "-i", is_flag=True, help="One table per project directory.")(
        _options(_period_command("daily", "Daily", "Date"))
    )
)
weekly = claude.command("weekly", help="Usage and cost per week.")(
    click.option(
        "--start-of-week",
        type=click.Choice(_WEEKDAYS),
        help="First day of a week (default sunday, as ccusage).",
    )(_options(_period_command("weekly", "Weekly", "Week")))
)
monthly = claude.command("monthly", help="Usage and cost per month.")(
    _options(_period_command("monthly", "Monthly", "Month"))
)


@claude.command("session")
@_options
def session(**kwargs: Any) -> None:
    """Usage and cost per session, most expensive first."""
    settings, options = _context(kwargs)

    async def report(engine: AsyncEngine) -> str:
        rows = await reports.session_rows(engine, options)
        if kwargs["as_json"]:
            return _dump(reports.sessions_report(rows))
        return render.usage_table(
            _title("By Session", options), "Session", rows, breakdown=kwargs["breakdown"]
        )

    _run(settings, report)


@claude.command("blocks")
@_options
@click.option("--active", "-a", is_flag=True, help="Only the active block, with burn rate and projection.")
@click.option(
    "--session-length", "-n", type=float, default=5.0, show_default=True, help="Block length in hours."
)
def blocks(**kwargs: Any) -> None:
    """5-hour billing windows; the active one with its burn rate and projection."""
    if kwargs["session_length"] <= 0:
        raise click.BadParameter("must be positive", param_hint="--session-length")
    settings, options = _context(kwargs)

    async def report(engine: AsyncEngine) -> str:
        found, now, length = await block_reports.load_blocks(
            engine, options, length_hours=kwargs["session_length"]
        )
        if kwargs["as_json"]:
            return _dump(block_reports.blocks_report(found, now, length, active_only=kwargs["active"]))
        if kwargs["active"]:
            active = [b for b in found if b.active(now, length)]
            return render.active_block_text(active[0], now) if active else "No active session block found."
        return render.blocks_table(found, now, length, options.zone)

    _run(settings, report)
