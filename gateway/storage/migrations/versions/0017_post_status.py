"""the post's derived status, stored and indexed, kept by a trigger on targets

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.content import drop_status_triggers, install_status_triggers

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("status", sa.String(length=24), server_default="draft", nullable=False))
    # Recomputes every post's status from its targets, then keeps it (gateway.content.post_status).
    install_status_triggers(op.execute, op.get_bind().dialect)
    op.create_index("ix_posts_org_status_created", "posts", ["organization_id", "status", "created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_posts_org_status_created", table_name="posts")
    for statement in drop_status_triggers(op.get_bind().dialect):
        op.execute(statement)
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("status")
