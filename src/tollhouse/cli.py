"""The ``tollhouse`` command line. Thin: parse, call a service, print."""

from __future__ import annotations

import asyncio
import logging
import sys
from decimal import Decimal
from pathlib import Path

import click

from tollhouse import __version__
from tollhouse.errors import ConfigError
from tollhouse.settings import Settings, load_settings

_PER_MILLION = Decimal(1_000_000)


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


config_option = click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML config file (default: $TOLLHOUSE_CONFIG).",
)


@click.group()
@click.version_option(__version__, prog_name="tollhouse")
def main() -> None:
    """Tollhouse: a self-hosted cost control plane for AI and cloud spend."""


@main.command()
@config_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default 8080).")
def serve(config: Path | None, host: str | None, port: int | None) -> None:
    """Run the server: gateway, APIs and dashboard on one port."""
    import uvicorn

    from tollhouse.app import create_app

    settings = _settings(config, host=host, port=port)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config: Path | None) -> None:
    """Apply pending migrations (the server also does this at start)."""
    from tollhouse.db.engine import create_engine, migrate, revision

    settings = _settings(config)

    async def run() -> tuple[str | None, str | None]:
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
            return await revision(engine)
        finally:
            await engine.dispose()

    current, head = asyncio.run(run())
    click.echo(f"database at revision {current} (head {head})")


@main.group()
def prices() -> None:
    """The price table in use."""


@prices.command("show")
@config_option
@click.argument("model")
def prices_show(config: Path | None, model: str) -> None:
    """Print the prices used for MODEL (USD per million tokens)."""
    from tollhouse.pricing.table import load_price_table

    settings = _settings(config)
    table = load_price_table(
        {name: o.model_dump(exclude_none=True) for name, o in settings.pricing.overrides.items()}
    )
    price = table.lookup(model)
    if price is None:
        raise click.ClickException(
            f"no price for {model!r} in {table.version}: it would be recorded as unpriced (0)"
        )
    click.echo(f"model:          {model}")
    click.echo(f"priced as:      {price.name} ({price.provider or 'unknown provider'})")
    click.echo(f"price table:    {table.version}")
    click.echo("USD per 1M tokens:")
    rows = [
        ("input", price.input),
        ("output", price.output),
        ("cache read", price.cache_read),
        ("cache write 5m", price.cache_write_5m),
        ("cache write 1h", price.cache_write_1h),
        ("input >200k", price.input_above_200k),
        ("output >200k", price.output_above_200k),
        ("cache read >200k", price.cache_read_above_200k),
        ("cache write >200k", price.cache_write_5m_above_200k),
    ]
    for label, value in rows:
        if value is not None:
            click.echo(f"  {label:<18} {_per_million(value)}")
    for tier, tier_prices in sorted(price.tiers.items()):
        parts = ", ".join(f"{kind} {_per_million(v)}" for kind, v in tier_prices.items())
        click.echo(f"  {tier + ' tier':<18} {parts}")


def _per_million(value: Decimal) -> str:
    return f"${(value * _PER_MILLION).normalize():f}"
