"""attempts(kind) and an index on attempts(started_at): provider quotas count the publishes of their window (engine.quotas)

Revision ID: 0019
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="publish"))
    op.create_index("ix_attempts_started", "attempts", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_started", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("kind")
