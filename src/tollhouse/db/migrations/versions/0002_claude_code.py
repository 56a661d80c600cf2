"""Claude Code import: per-file read cursors, ledger columns for responses, report roll-ups.

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


_LEDGER_COLUMNS = (
    ("claude_seq", sa.BigInteger()),
    ("claude_ts_ms", sa.BigInteger()),
    ("claude_project_dir", sa.String(512)),
    ("claude_cwd", sa.String(1024)),
    ("claude_fast", sa.Boolean()),
    ("claude_reported_nanos", sa.BigInteger()),
    ("claude_calc_nanos", sa.BigInteger()),
    ("claude_ccusage_nanos", sa.BigInteger()),
    ("claude_unpriced", sa.Boolean()),
    ("claude_ccusage_unpriced", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.alter_column(
            "project_id", existing_type=sa.String(64), type_=sa.String(1024), existing_nullable=False
        )
        batch.alter_column(
            "session_id", existing_type=sa.String(64), type_=sa.String(128), existing_nullable=True
        )
        for name, type_ in _LEDGER_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
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
    op.drop_table("claude_files")
    with op.batch_alter_table("ledger") as batch:
        for name, _ in reversed(_LEDGER_COLUMNS):
            batch.drop_column(name)
        batch.alter_column(
            "session_id", existing_type=sa.String(128), type_=sa.String(64), existing_nullable=True
        )
        batch.alter_column(
            "project_id", existing_type=sa.String(1024), type_=sa.String(64), existing_nullable=False
        )
