"""audit entries: the actor's organization, the outcome, object ids and error codes

Revision ID: 0012
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_organization_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=20), nullable=False, server_default="ok"))
        batch_op.add_column(sa.Column("object_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("error_codes", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.create_index(batch_op.f("ix_audit_entries_created_at"), ["created_at"], unique=False)
    # The defaults were only for rows already there; the model sets every value itself.
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("outcome", server_default=None)
        batch_op.alter_column("object_ids", server_default=None)
        batch_op.alter_column("error_codes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_created_at"))
        batch_op.drop_column("error_codes")
        batch_op.drop_column("object_ids")
        batch_op.drop_column("outcome")
        batch_op.drop_column("actor_organization_id")
