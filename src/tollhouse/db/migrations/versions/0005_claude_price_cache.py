"""Claude Code imports remember the rates of the models they priced, per price source.

A report after a few new lines would otherwise load the whole price table (3,700 models), the
pricing modules and ccusage's tables to price ten lines of a model it priced yesterday. The key
names the price source exactly (the snapshot file's identity and the overrides, see
``pricing.snapshot.source_key``), so a new snapshot or changed overrides never reuse old rates.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claude_price_cache",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("rates", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_claude_price_cache"),
    )


def downgrade() -> None:
    op.drop_table("claude_price_cache")
