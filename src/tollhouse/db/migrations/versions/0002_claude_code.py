"""Claude Code import: per-file read cursors, per-entry detail, report roll-ups, a wider ledger project.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_AGG_VALUES = (
    "n", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "c_calc",
    "c_ccusage", "c_display", "c_auto", "c_auto_ccusage", "m_calc", "m_calc_ccusage", "m_auto",
    "m_auto_ccusage", "min_seq", "min_ts", "max_ts",
)  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.alter_column(
            "project_id", existing_type=sa.String(64), type_=sa.String(1024), existing_nullable=False
        )
    op.create_table(
        "claude_files",
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("project_dir", sa.String(512), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("is_subagent", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("read_offset", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("head_len", sa.Integer(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("malformed_lines", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_claude_files"),
    )
    op.create_table(
        "claude_entries",
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("ledger_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("project_dir", sa.String(512), nullable=False),
        sa.Column("cwd", sa.String(1024), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("is_sidechain", sa.Boolean(), nullable=False),
        sa.Column("fast", sa.Boolean(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_creation_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reported_cost_nanos", sa.BigInteger(), nullable=True),
        sa.Column("calc_cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("ccusage_cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("unpriced", sa.Boolean(), nullable=False),
        sa.Column("ccusage_unpriced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("external_id", name="pk_claude_entries"),
    )
    op.create_index("ix_claude_entries_session_id", "claude_entries", ["session_id"])
    op.create_table(
        "claude_dirty",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_claude_dirty"),
    )
    op.create_table(
        "claude_agg",
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("k1", sa.BigInteger(), nullable=False),
        sa.Column("k2", sa.Integer(), nullable=False),
        sa.Column("project_dir", sa.String(512), nullable=False),
        sa.Column("cwd", sa.String(1024), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("fast", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _AGG_VALUES),
        sa.PrimaryKeyConstraint(
            "session_id", "kind", "k1", "k2", "project_dir", "cwd", "model", "fast", name="pk_claude_agg"
        ),
    )
    op.create_index("ix_claude_agg_kind", "claude_agg", ["kind"])
    op.create_table(
        "claude_agg_state",
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("dirty_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name="pk_claude_agg_state"),
    )


def downgrade() -> None:
    op.drop_table("claude_agg_state")
    op.drop_index("ix_claude_agg_kind", table_name="claude_agg")
    op.drop_table("claude_agg")
    op.drop_table("claude_dirty")
    op.drop_index("ix_claude_entries_session_id", table_name="claude_entries")
    op.drop_table("claude_entries")
    op.drop_table("claude_files")
    with op.batch_alter_table("ledger") as batch:
        batch.alter_column(
            "project_id", existing_type=sa.String(1024), type_=sa.String(64), existing_nullable=False
        )
