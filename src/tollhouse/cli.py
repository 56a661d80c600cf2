"""The ``tollhouse`` command line. Thin: parse, call a service, print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tollhouse import __version__
from tollhouse.errors import ConfigError, TollhouseError

if TYPE_CHECKING:
    from decimal import Decimal

    from tollhouse.settings import Settings


def _settings(config: Path | None, **overrides: object) -> Settings:
    from tollhouse.settings import load_settings  # pydantic: only for commands that need it

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
    import logging

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
    import asyncio

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
    return f"${(value * 1_000_000).normalize():f}"


from tollhouse.claude_code.cli import claude  # noqa: E402 - registered after `main` exists

main.add_command(claude)


def _with_tenancy(config: Path | None, work: Any) -> Any:
    """Run ``work(tenancy)`` against the configured database (and Redis, so running servers hear)."""
    import asyncio

    from tollhouse.db.engine import create_engine, migrate
    from tollhouse.gateway.providers import ProviderRegistry
    from tollhouse.pricing.table import load_price_table
    from tollhouse.tenancy.service import Tenancy

    settings = _settings(config)

    async def run() -> Any:
        engine = create_engine(settings.resolved_database_url)
        tenancy = Tenancy(settings, engine, load_price_table(), ProviderRegistry(settings.providers))
        try:
            await migrate(engine)
            return await work(tenancy)
        finally:
            await tenancy.close()
            await engine.dispose()

    try:
        return asyncio.run(run())
    except TollhouseError as exc:
        raise click.ClickException(exc.message) from exc


@main.group()
def projects() -> None:
    """Projects (seed 004)."""


@projects.command("list")
@config_option
def projects_list(config: Path | None) -> None:
    """List projects and their plans."""

    async def work(tenancy: Any) -> None:
        for row in await tenancy.store.list_projects(None):
            click.echo(f"{row.id}\t{row.name}\t{tenancy.plans.get(row.plan).name}\t{row.org_id or ''}")

    _with_tenancy(config, work)


@projects.command("create")
@config_option
@click.argument("name")
@click.option("--plan", default=None, help="free, starter, pro, agency, unlimited or a custom plan.")
@click.option("--org", "org_id", default=None, help="Owning organisation (customer id).")
def projects_create(config: Path | None, name: str, plan: str | None, org_id: str | None) -> None:
    """Create a project and print its first API key (shown once)."""

    async def work(tenancy: Any) -> None:
        project, _, made = await tenancy.create_project(
            name, org_id=org_id, plan=plan, provider=None, key_name="Default key"
        )
        click.echo(f"project: {project.id}\napi key: {made.secret}   (shown once: store it now)")

    _with_tenancy(config, work)


@projects.command("plan")
@config_option
@click.argument("project_id")
@click.argument("plan")
def projects_plan(config: Path | None, project_id: str, plan: str) -> None:
    """Set a project's plan."""

    async def work(tenancy: Any) -> None:
        await tenancy.project(project_id)
        await tenancy.update_project(project_id, {"plan": plan})
        click.echo(f"{project_id}: plan {plan}")

    _with_tenancy(config, work)


@main.group()
def keys() -> None:
    """Project API keys and encrypted provider keys."""


@keys.command("create")
@config_option
@click.argument("project_id")
@click.option("--name", default="API key")
@click.option("--test", "test_key", is_flag=True, help="A th_test_ sandbox key.")
def keys_create(config: Path | None, project_id: str, name: str, test_key: bool) -> None:
    """Create a key for PROJECT_ID and print it (shown once)."""
    from tollhouse.tenancy.keys import KeyKind

    async def work(tenancy: Any) -> None:
        await tenancy.project(project_id)
        key, made = await tenancy.create_key(project_id, name, KeyKind.TEST if test_key else KeyKind.PROJECT)
        click.echo(f"key id: {key.id}\napi key: {made.secret}   (shown once: store it now)")

    _with_tenancy(config, work)


@keys.command("list")
@config_option
@click.argument("project_id")
def keys_list(config: Path | None, project_id: str) -> None:
    """List a project's active keys (never the keys themselves)."""

    async def work(tenancy: Any) -> None:
        for key in await tenancy.store.list_keys(project_id):
            used = key.last_used_at.isoformat() if key.last_used_at else "never"
            click.echo(f"{key.id}\t{key.hint}\t{key.kind.value}\t{key.name}\tlast used {used}")

    _with_tenancy(config, work)


@keys.command("revoke")
@config_option
@click.argument("project_id")
@click.argument("key_id")
def keys_revoke(config: Path | None, project_id: str, key_id: str) -> None:
    """Revoke a key (running servers refuse it within tenancy.cache_ttl_s; at once with Redis)."""

    async def work(tenancy: Any) -> None:
        await tenancy.revoke_key(project_id, key_id)
        click.echo(f"revoked {key_id}")

    _with_tenancy(config, work)


@keys.command("rotate-secrets")
@config_option
def keys_rotate(config: Path | None) -> None:
    """Re-encrypt every provider key under the first of tenancy.encryption_keys."""

    async def work(tenancy: Any) -> None:
        click.echo(f"re-encrypted {await tenancy.rotate_provider_keys()} provider keys")

    _with_tenancy(config, work)


@main.group()
def budgets() -> None:
    """Project and key budgets."""


@budgets.command("set")
@config_option
@click.argument("project_id")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="month", show_default=True)
@click.option("--usd", "limit_usd", type=float, default=None, help="Limit in USD.")
@click.option("--tokens", "limit_tokens", type=int, default=None, help="Limit in tokens.")
@click.option("--key", "key_id", default=None, help="A key's budget instead of the project's.")
def budgets_set(
    config: Path | None,
    project_id: str,
    period: str,
    limit_usd: float | None,
    limit_tokens: int | None,
    key_id: str | None,
) -> None:
    """Set a budget (same as PUT /api/projects/{id}/budget)."""
    from tollhouse.tenancy.routes import BudgetBody, budget_from

    async def work(tenancy: Any) -> None:
        await tenancy.project(project_id)
        budget = budget_from(
            BudgetBody(period=period, limit_usd=limit_usd, limit_tokens=limit_tokens), key_id or ""
        )
        status = await tenancy.set_budget(project_id, budget)
        click.echo(_budget_text(status.as_json()))

    _with_tenancy(config, work)


@budgets.command("show")
@config_option
@click.argument("project_id")
@click.option("--key", "key_id", default=None)
def budgets_show(config: Path | None, project_id: str, key_id: str | None) -> None:
    """Show a budget and what is spent (and reserved) in its current period."""

    async def work(tenancy: Any) -> None:
        status = await tenancy.budget_status(project_id, key_id or "")
        click.echo(_budget_text(status.as_json()) if status else "no budget")

    _with_tenancy(config, work)


def _budget_text(budget: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in budget.items())
