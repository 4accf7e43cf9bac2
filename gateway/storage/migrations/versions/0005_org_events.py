"""org events: organization events that belong to no job, stored so every process's relay carries them

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_org_events_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_events")),
    )
    with op.batch_alter_table("org_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_events_organization_id"), ["organization_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_events_organization_id"))
    op.drop_table("org_events")
