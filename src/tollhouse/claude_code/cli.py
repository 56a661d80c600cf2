"""``tollhouse claude daily|weekly|monthly|session|blocks``: ccusage-compatible reports.

Each command first brings the database up to date with the transcripts (an incremental scan:
unchanged files cost a ``stat``), then answers from SQL. ``--json`` prints ccusage 20.0.24's
structure and field names, so scripts written for ccusage work unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import orjson

from tollhouse.claude_code import fast_scan, lite, reports
from tollhouse.claude_code.lite import CostMode, ScanResult
from tollhouse.pricing.tiers import TierRule

if TYPE_CHECKING:
    import sqlite3

    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollhouse.pricing import PriceTable

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


def _head_revision() -> str | None:
    versions = Path(__file__).resolve().parent.parent / "db" / "migrations" / "versions"
    names = [p.name.split("_", 1)[0] for p in versions.glob("[0-9]*_*.py")]
    return max(names) if names else None


async def ensure_schema(engine: AsyncEngine) -> None:
    """Migrate unless already at the newest revision (alembic costs half a second to import)."""
    from sqlalchemy import text

    from tollhouse.db.engine import migrate

    try:
        async with engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:
        current = None
    head = _head_revision()
    if head is None or current != head:
        await migrate(engine)


@dataclass(frozen=True, slots=True)
class _Config:
    """What the reports need from the settings."""

    database_url: str
    timezone: str
    cost_mode: str
    long_context_rule: str
    config_dirs: tuple[str, ...]
    price_overrides: dict[str, dict[str, Any]]


# Settings a report reads, by environment variable: anything else set (or a config file with
# more than these) goes through the full settings loader, which validates everything.
_QUICK_ENV = frozenset({"TOLLHOUSE_DATA_DIR", "TOLLHOUSE_DATABASE_URL", "TOLLHOUSE_TIMEZONE"})


def _quick_config(config: Path | None) -> _Config | None:
    """The report's settings without pydantic (a fifth of a warm report's time), when the
    environment sets nothing else and there is no config file; None otherwise."""
    if config is not None:
        return None
    env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith("TOLLHOUSE_")}
    if not set(env) <= _QUICK_ENV:
        return None
    url = env.get("TOLLHOUSE_DATABASE_URL")
    if not url:
        data_dir = env.get("TOLLHOUSE_DATA_DIR")
        if data_dir is None:
            import platformdirs

            data_dir = platformdirs.user_data_dir("tollhouse", appauthor=False)
        url = f"sqlite+aiosqlite:///{Path(data_dir) / 'tollhouse.db'}"
    return _Config(url, env.get("TOLLHOUSE_TIMEZONE", "UTC"), "auto", "anthropic", (), {})


def _load_config(config: Path | None) -> _Config:
    quick = _quick_config(config)
    if quick is not None:
        return quick
    from tollhouse.errors import ConfigError
    from tollhouse.settings import load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return _Config(
        settings.resolved_database_url,
        settings.timezone,
        settings.claude_code.cost_mode,
        settings.pricing.long_context_rule,
        tuple(settings.claude_code.config_dirs),
        {name: o.model_dump(exclude_none=True) for name, o in settings.pricing.overrides.items()},
    )


def _context(kwargs: dict[str, Any]) -> tuple[_Config, reports.ReportOptions]:
    settings = _load_config(kwargs.get("config"))
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
        mode=kwargs.get("mode") or settings.cost_mode,
        tier_rule=TierRule(kwargs.get("tier_rule") or settings.long_context_rule),
    )
    return settings, options


def _prices(settings: _Config) -> PriceTable:
    from tollhouse.pricing.table import load_price_table

    return load_price_table(settings.price_overrides)


Report = Callable[["AsyncEngine | sqlite3.Connection"], Coroutine[Any, Any, str]]


def _run(settings: _Config, report: Report, kind: str) -> None:
    """``kind``: the roll-up the report reads (see ``rollups``), built during a first import."""
    from tollhouse.claude_code.discovery import claude_roots

    roots = claude_roots(settings.config_dirs)
    path = lite.sqlite_path(settings.database_url)
    if path is not None:
        click.echo(_run_sqlite(settings, path, roots, report, kind))
        return

    async def go() -> str:
        from tollhouse.claude_code.importer import ClaudeImporter
        from tollhouse.db.engine import create_engine

        engine = create_engine(settings.database_url)
        try:
            await ensure_schema(engine)
            importer = ClaudeImporter(engine, _prices(settings), roots, cost_mode=settings.cost_mode)
            _warn(await importer.scan())
            return await report(engine)
        finally:
            await engine.dispose()

    import asyncio  # only here: the SQLite path never needs it (~40 ms of start-up)

    click.echo(asyncio.run(go()))


def _run_sqlite(settings: _Config, path: str, roots: list[Path], report: Report, kind: str) -> str:
    """SQLite: the stdlib driver end to end; SQLAlchemy only to create or migrate the schema."""
    head = _head_revision()
    create: Callable[[], None] | None = None
    if head is None or lite.schema_revision(path) != head:

        def upgrade() -> None:
            import asyncio

            from tollhouse.db.engine import create_engine, migrate

            async def run() -> None:
                engine = create_engine(settings.database_url)
                try:
                    await migrate(engine)
                finally:
                    await engine.dispose()

            asyncio.run(run())

        if Path(path).exists():
            upgrade()
        else:
            create = partial(_create_sqlite, path)  # while the first import's parsing runs
    from tollhouse.pricing.snapshot import source_key

    source = source_key(settings.price_overrides)  # its rates are remembered: see fast_scan.scan
    prices, mode = partial(_prices, settings), settings.cost_mode
    found = fast_scan.scan(
        path, roots, prices, cost_mode=mode, create=create, rollup_kinds=(kind,), price_source=source
    )
    _warn(found)
    conn = lite.connect(path)
    try:
        coroutine = report(conn)
        try:
            coroutine.send(None)  # the report coroutines never await on this path
        except StopIteration as done:
            return str(done.value)
        raise RuntimeError("report awaited on the SQLite path")
    finally:
        conn.close()


def _create_sqlite(path: str) -> None:
    """A new database from the generated DDL, stamped at head (no migrations to run)."""
    from tollhouse.db import sqlite_schema

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sqlite_schema.create(path)


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

        async def report(engine: AsyncEngine | sqlite3.Connection) -> str:
            rows = await reports.daily_rows(engine, options, by_project=instances)
            if name == "weekly":
                rows = reports.bucket_rows(rows, reports.week_start(options.start_of_week))
            elif name == "monthly":
                rows = reports.bucket_rows(rows, reports.month_of)
            if kwargs["as_json"]:
                return _dump(
                    reports.instances_report(rows) if instances else reports.period_report(name, rows)
                )
            from tollhouse.claude_code import render  # tables only: JSON output skips the import

            return render.usage_table(_title(title, options), first, rows, breakdown=kwargs["breakdown"])

        _run(settings, report, f"day:{options.zone.key}")  # the roll-up daily_rows reads

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

    async def report(engine: AsyncEngine | sqlite3.Connection) -> str:
        rows = await reports.session_rows(engine, options)
        if kwargs["as_json"]:
            return _dump(reports.sessions_report(rows))
        from tollhouse.claude_code import render  # tables only: JSON output skips the import

        return render.usage_table(
            _title("By Session", options), "Session", rows, breakdown=kwargs["breakdown"]
        )

    _run(settings, report, "session")


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

    async def report(engine: AsyncEngine | sqlite3.Connection) -> str:
        from tollhouse.claude_code import blocks as block_reports  # only this command reads blocks
        from tollhouse.claude_code import render

        found, now, length = await block_reports.load_blocks(
            engine, options, length_hours=kwargs["session_length"]
        )
        if kwargs["as_json"]:
            return _dump(block_reports.blocks_report(found, now, length, active_only=kwargs["active"]))
        if kwargs["active"]:
            active = [b for b in found if b.active(now, length)]
            return render.active_block_text(active[0], now) if active else "No active session block found."
        return render.blocks_table(found, now, length, options.zone)

    _run(settings, report, "hour")
