"""One frozen, typed settings object, read from a TOML file and ``TOLLHOUSE_*`` variables.

Precedence, highest first: values passed in code (the CLI's ``--host``/``--port``),
``TOLLHOUSE_*`` environment variables (nested keys with ``__``, for example
``TOLLHOUSE_LEDGER__BATCH_SIZE``), the TOML file, then the defaults below. Every field is
documented in the README; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tollhouse.cache.config import CacheSettings, SemanticCacheSettings
from tollhouse.errors import ConfigError
from tollhouse.events.config import EventsSettings
from tollhouse.routing.config import OverridesSettings, RoutingSettings

ENV_PREFIX = "TOLLHOUSE_"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderSettings(_Section):
    """An upstream LLM provider the gateway forwards to."""

    name: str = Field(description="Unique name, shown in `x-tollhouse-provider` and the ledger.")
    protocol: Literal["openai", "anthropic"] = Field(
        description="Wire format: `openai` (OpenAI, Groq, OpenRouter, any compatible server) or `anthropic`."
    )
    base_url: str = Field(
        description="Root URL. OpenAI protocol includes `/v1` (`https://api.openai.com/v1`); "
        "Anthropic does not (`https://api.anthropic.com`)."
    )
    api_key: str | None = Field(default=None, description="The provider key itself (prefer `api_key_env`).")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the provider key."
    )
    models: tuple[str, ...] = Field(
        default=("*",), description="Model names or globs (`gpt-4o*`) this provider serves."
    )
    prefix: str | None = Field(
        default=None,
        description="Optional routing prefix: `openrouter/meta-llama/x` goes to the provider with prefix "
        "`openrouter` and is sent upstream as `meta-llama/x`. Defaults to the provider's name.",
    )
    timeout_s: float = Field(default=600.0, gt=0, description="Upstream read timeout in seconds.")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Upstream connect timeout in seconds.")
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries on 429/5xx/connection errors before the first byte."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent upstream.")

    def resolved_api_key(self) -> str | None:
        """The configured key, or None: then the caller's own credentials are forwarded."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None

    @property
    def routing_prefix(self) -> str:
        return self.prefix or self.name


class GatewaySettings(_Section):
    """How the gateway talks to providers."""

    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, description="Largest request body accepted (bytes); larger is 413."
    )
    retry_backoff_s: float = Field(
        default=0.25, ge=0, description="First retry delay in seconds; doubles on each retry."
    )
    pool_connections: int = Field(default=256, gt=0, description="Upstream connection pool size.")
    batch_concurrency: int = Field(
        default=5, gt=0, description="`POST /v1/batch`: prompts of one batch answered at the same time."
    )
    batch_max_items: int = Field(default=100, gt=0, description="`POST /v1/batch`: most prompts per batch.")


class LedgerSettings(_Section):
    """The batched ledger writer."""

    batch_size: int = Field(default=500, gt=0, description="Rows written per batch.")
    flush_interval_ms: int = Field(default=200, gt=0, description="Longest a row waits before it is written.")
    queue_size: int = Field(
        default=100_000, gt=0, description="Bounded queue; when full, requests wait rather than drop rows."
    )


class PriceOverride(_Section):
    """Per-model prices in USD per token that replace (or add to) the bundled table."""

    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    cache_read_input_token_cost: float | None = None
    cache_creation_input_token_cost: float | None = None
    cache_creation_input_token_cost_above_1hr: float | None = None
    input_cost_per_token_above_200k_tokens: float | None = None
    output_cost_per_token_above_200k_tokens: float | None = None
    cache_read_input_token_cost_above_200k_tokens: float | None = None
    cache_creation_input_token_cost_above_200k_tokens: float | None = None


class PricingSettings(_Section):
    """The price engine."""

    long_context_rule: Literal["anthropic", "ccusage"] = Field(
        default="anthropic",
        description="`anthropic`: a request above 200k input tokens is billed entirely at the higher rate. "
        "`ccusage`: only the tokens above 200k, per token kind (ccusage's approximation).",
    )
    overrides: dict[str, PriceOverride] = Field(
        default_factory=dict, description='Per-model price overrides, `[pricing.overrides."my-model"]`.'
    )


class ClaudeCodeSettings(_Section):
    """Reading the local Claude Code transcripts."""

    enabled: bool = Field(default=True, description="Import Claude Code transcripts in the background.")
    config_dirs: tuple[str, ...] = Field(
        default=(),
        description="Claude config directories to read. Empty: like Claude Code itself, "
        "`$CLAUDE_CONFIG_DIR` (comma-separated), else `~/.config/claude` and `~/.claude`.",
    )
    watch: bool = Field(default=True, description="Follow file changes after the first import.")
    cost_mode: Literal["auto", "calculate", "display"] = Field(
        default="auto",
        description="`auto`: the transcript's `costUSD` when present, else computed; `calculate`: always "
        "computed from tokens; `display`: only `costUSD`.",
    )


# Seed 004's plans plus `unlimited`; their limits live in tollhouse.tenancy.plans.
BUILTIN_PLAN_NAMES = ("free", "starter", "pro", "agency", "unlimited")


class PlanSettings(_Section):
    """A plan's request limits (seed 004); unset means unlimited."""

    requests_per_minute: int | None = Field(default=None, gt=0, description="Requests per minute.")
    requests_per_month: int | None = Field(
        default=None, gt=0, description="Requests per calendar month (configured time zone)."
    )


class TenancySettings(_Section):
    """Projects, API keys, plans, budgets and cluster-wide counters."""

    default_plan: str = Field(
        default="unlimited",
        description="Plan of a project that has none: `free`, `starter`, `pro`, `agency`, `unlimited` or a "
        "custom plan.",
    )
    plans: dict[str, PlanSettings] = Field(
        default_factory=dict,
        description="Custom plans (or overrides of the built-in ones), `[tenancy.plans.NAME]`.",
    )
    test_key_requests_per_minute: int = Field(
        default=10, gt=0, description="Rate limit of each `th_test_` key."
    )
    test_key_requests_per_month: int = Field(
        default=1000, gt=0, description="Monthly request quota of each `th_test_` key."
    )
    default_max_tokens: int = Field(
        default=4096,
        gt=0,
        description="Output tokens reserved against a budget when a request sets no `max_tokens`.",
    )
    cache_ttl_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a process trusts its cached keys, plans, budgets and provider keys; bounds how "
        "late another process sees a revocation when Redis pub/sub is unavailable.",
    )
    last_used_flush_s: float = Field(default=5.0, gt=0, description="How often `last_used_at` is written.")
    encryption_keys: tuple[str, ...] = Field(
        default=(),
        description="Fernet keys for provider keys at rest, newest first (older ones still decrypt; "
        "`tollhouse keys rotate-secrets` re-encrypts). Empty: one is generated in the data dir.",
    )
    jwt_secret: str | None = Field(
        default=None, min_length=32, description="HS256 secret (32+ bytes) for JWTs on management routes."
    )
    redis_prefix: str = Field(default="tollhouse:", description="Prefix of every Redis key and channel.")

    @model_validator(mode="after")
    def _known_default_plan(self) -> TenancySettings:
        if self.default_plan not in BUILTIN_PLAN_NAMES and self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is neither built in nor in [tenancy.plans]")
        return self


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tollhouse", appauthor=False))


class Settings(BaseSettings):
    """Everything Tollhouse can be told. Frozen: build a new one to change anything."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port to bind.")
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the SQLite database lives (`$TOLLHOUSE_DATA_DIR`, else the per-user data dir).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; `postgresql+asyncpg://…` for cluster mode. "
        "Default: `sqlite+aiosqlite:///<data_dir>/tollhouse.db`.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for cluster mode (`redis://host:6379/0`)."
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone that days, weeks and months are grouped in."
    )
    admin_key: str | None = Field(default=None, description="Key for management routes (`/api/…`).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    providers: tuple[ProviderSettings, ...] = Field(
        default=(), description="Upstream providers, `[[providers]]` tables."
    )
    gateway: GatewaySettings = Field(default_factory=GatewaySettings, description="`[gateway]` table.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings, description="`[ledger]` table.")
    pricing: PricingSettings = Field(default_factory=PricingSettings, description="`[pricing]` table.")
    claude_code: ClaudeCodeSettings = Field(
        default_factory=ClaudeCodeSettings, description="`[claude_code]` table."
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="`[aliases]` table: name → model, added to (or replacing) the built-in "
        "`haiku`, `sonnet` and `opus`.",
    )
    overrides: OverridesSettings = Field(
        default_factory=OverridesSettings, description="`[overrides]` table."
    )
    routing: RoutingSettings = Field(default_factory=RoutingSettings, description="`[routing]` table.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="`[cache]` table.")
    semantic_cache: SemanticCacheSettings = Field(
        default_factory=SemanticCacheSettings, description="`[semantic_cache]` table."
    )
    tenancy: TenancySettings = Field(default_factory=TenancySettings, description="`[tenancy]` table.")
    events: EventsSettings = Field(default_factory=EventsSettings, description="`[events]` table.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _unique_provider_names(self) -> Settings:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique, repeated: {', '.join(duplicates)}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'tollhouse.db'}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def load_settings(config_path: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (``config_path`` or ``$TOLLHOUSE_CONFIG``), then the environment.

    Raises ``ConfigError`` naming the offending key when anything is invalid.
    """
    path_text = str(config_path) if config_path else os.environ.get(f"{ENV_PREFIX}CONFIG")
    file_values: dict[str, Any] = {}
    if path_text:
        path = Path(path_text).expanduser()
        try:
            with path.open("rb") as handle:
                file_values = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc

    class _FromFile(Settings):
        # The file is the lowest-priority source: the environment and explicit overrides win.
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, file_values))

    try:
        return _FromFile(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"{key}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)
