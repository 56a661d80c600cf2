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
    Column("project_id", String(64), nullable=False),
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
    Column("session_id", String(64), nullable=True),
    Column("is_subagent", Boolean, nullable=False, default=False),
    Column("external_id", String(200), nullable=True),
    Index("ix_ledger_project_id_created_at", "project_id", "created_at"),
    Index("ix_ledger_created_at", "created_at"),
    Index("ix_ledger_source_external_id", "source", "external_id", unique=True),
    Index("ix_ledger_session_id", "session_id"),
)
