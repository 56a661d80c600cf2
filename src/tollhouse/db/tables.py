"""Every table, as SQLAlchemy Core. Migrations under ``migrations/versions`` must build exactly this.

A test migrates an empty database and compares it with this metadata, so the two cannot drift.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per priced call, whatever its outcome. Costs are integer nano-dollars (1e-9 USD).
ledger = Table(
    "ledger",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("request_id", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("project_id", String(1024), nullable=False),  # 0002: wide enough for a Claude Code cwd
    Column("api_key_id", String(40), nullable=True),
    Column("source", String(16), nullable=False),
    Column("route", String(64), nullable=False),
    Column("provider", String(64), nullable=True),
    Column("model_requested", String(200), nullable=True),
    Column("model_served", String(200), nullable=True),
    Column("stream", Boolean, nullable=False, default=False),
    Column("status_code", Integer, nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_5m_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_1h_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("reasoning_tokens", BigInteger, nullable=False, default=0),
    Column("cost_nanos", BigInteger, nullable=False, default=0),
    Column("saved_cost_nanos", BigInteger, nullable=False, default=0),
    Column("tokens_saved", BigInteger, nullable=False, default=0),
    Column("cached", Boolean, nullable=False, default=False),
    Column("unpriced", Boolean, nullable=False, default=False),
    Column("price_version", String(64), nullable=False),
    Column("service_tier", String(16), nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("ttft_ms", Integer, nullable=True),
    Column("upstream_request_id", String(200), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    # Claude Code imports: the transcript's session, whether it was a subagent, and the
    # (message.id, requestId) de-duplication key.
    Column("session_id", String(128), nullable=True),  # 0002: 128, as claude_files
    Column("is_subagent", Boolean, nullable=False, default=False),
    Column("external_id", String(200), nullable=True),
    # Claude Code imports only (migration 0002; NULL for every other row): what ccusage-compatible
    # reports need beyond the columns above. First-seen order, the instant in milliseconds, the
    # encoded project directory and the line's cwd; the transcript's own costUSD and the cost
    # under both long-context rules (``cost_nanos`` holds the configured cost mode's choice),
    # whether each rule found a price (``unpriced`` is adjusted for the cost mode), fast mode.
    Column("claude_seq", BigInteger, nullable=True),
    Column("claude_ts_ms", BigInteger, nullable=True),
    Column("claude_project_dir", String(512), nullable=True),
    Column("claude_cwd", String(1024), nullable=True),
    Column("claude_fast", Boolean, nullable=True),
    Column("claude_reported_nanos", BigInteger, nullable=True),
    Column("claude_calc_nanos", BigInteger, nullable=True),
    Column("claude_ccusage_nanos", BigInteger, nullable=True),
    Column("claude_unpriced", Boolean, nullable=True),
    Column("claude_ccusage_unpriced", Boolean, nullable=True),
    Index("ix_ledger_project_id_created_at", "project_id", "created_at"),
    Index("ix_ledger_created_at", "created_at"),
    Index("ix_ledger_source_external_id", "source", "external_id", unique=True),
    Index("ix_ledger_session_id", "session_id"),
)


# --- Claude Code transcript import (tollhouse.claude_code; migration 0002) ---------------------

# How far each transcript has been read, so a re-scan reads only appended bytes; the size,
# inode and first bytes tell a truncated or replaced file from one that grew.
claude_files = Table(
    "claude_files",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("project_dir", String(512), nullable=False),
    Column("session_id", String(128), nullable=False),
    Column("is_subagent", Boolean, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("read_offset", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("head_len", Integer, nullable=False),
    Column("lines", BigInteger, nullable=False),
    Column("malformed_lines", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Sessions whose entries changed (appended by every import; `id` only grows). Each roll-up kind
# remembers the last id it has folded in, so a report recomputes only the sessions changed since.
# Claude Code responses live in the ledger (source "claude-code", the claude_* columns), one row
# per de-duplicated (message.id, requestId); roll-ups are recomputed from those rows.
claude_dirty = Table(
    "claude_dirty",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session_id", String(128), nullable=False),
)

# Report roll-ups, per session: `kind` is "session" (no time key), "hour" (k1 = UTC hour, k2 = 1
# for entries stamped exactly on the hour: blocks) or "day:<zone>" (k1 = local day number).
# Costs are kept under every cost mode and long-context rule; m_* count entries without a price.
CLAUDE_REPORT_COLUMNS = (
    "kind", "k1", "model", "fast", "input_tokens", "output_tokens", "cache_creation_tokens",
    "cache_read_tokens", "c_calc", "c_ccusage", "c_display", "c_auto", "c_auto_ccusage", "m_calc",
    "m_calc_ccusage", "m_auto", "m_auto_ccusage", "min_seq",
)  # fmt: skip
claude_agg = Table(
    "claude_agg",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("kind", String(80), primary_key=True),
    Column("k1", BigInteger, primary_key=True),
    Column("k2", Integer, primary_key=True),
    Column("project_dir", String(512), primary_key=True),
    Column("cwd", String(1024), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("fast", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_creation_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("c_calc", BigInteger, nullable=False),
    Column("c_ccusage", BigInteger, nullable=False),
    Column("c_display", BigInteger, nullable=False),
    Column("c_auto", BigInteger, nullable=False),
    Column("c_auto_ccusage", BigInteger, nullable=False),
    Column("m_calc", BigInteger, nullable=False),
    Column("m_calc_ccusage", BigInteger, nullable=False),
    Column("m_auto", BigInteger, nullable=False),
    Column("m_auto_ccusage", BigInteger, nullable=False),
    Column("min_seq", BigInteger, nullable=False),
    Column("min_ts", BigInteger, nullable=False),
    Column("max_ts", BigInteger, nullable=False),
    # Migration 0004: the period reports' query (group by k1, model, fast; sum) reads only this.
    Index("ix_claude_agg_report", *CLAUDE_REPORT_COLUMNS),
)

# The exact-integer base rates (see ``claude_code.pricer.Rates``) of the models Claude Code imports
# priced, per price source (migration 0005; ``source`` as ``pricing.snapshot.source_key`` names it,
# ``version`` the table's version for those prices): later imports price those models without
# loading the price table.
claude_price_cache = Table(
    "claude_price_cache",
    metadata,
    Column("source", Text, primary_key=True),
    Column("version", String(80), nullable=False),
    Column("rates", Text, nullable=False),
)

# How far each roll-up kind has folded in `claude_dirty`; the row of kind "#seq" holds the last
# first-seen number given to an imported response (so no scan of the ledger is needed to find it).
claude_agg_state = Table(
    "claude_agg_state",
    metadata,
    Column("kind", String(80), primary_key=True),
    Column("dirty_id", BigInteger, nullable=False),
)


# --- Tenancy: organisations, projects' plans, API keys, provider keys, budgets (migration 0003) ---

# An organisation (seed 002's customer_id) owns projects; a JWT carrying `org` sees only its own.
organizations = Table(
    "organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

for _column in (
    Column("org_id", String(64), nullable=True),
    Column("plan", String(64), nullable=True),  # NULL: the configured default plan
    Column("provider", String(64), nullable=True),  # seed 004's informational `provider`
):
    projects.append_column(_column)

# Only the SHA-256 of a key is stored; `hint` is what listings show (`th_proj_AbCd…`).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(8), nullable=False),  # "proj" or "test"
    Column("key_hash", String(64), nullable=False),
    Column("hint", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_key_hash", "key_hash", unique=True),
    Index("ix_api_keys_project_id", "project_id"),
)

# A project's own provider key (bring your own key), Fernet-encrypted.
provider_keys = Table(
    "provider_keys",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One budget per project (key_id "") and per key; limits in nano-dollars and/or tokens.
budgets = Table(
    "budgets",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("key_id", String(40), primary_key=True),
    Column("period", String(8), nullable=False),
    Column("limit_nanos", BigInteger, nullable=True),
    Column("limit_tokens", BigInteger, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
