"""campaigns and recurrences: named groups of posts with a status the engine's claim respects; recurring posts

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("late_policy", sa.String(length=20), nullable=False),
        sa.Column("created_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_campaigns_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_org_created", ["organization_id", "created_at", "id"], unique=False)
    op.create_table(
        "recurrences",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("until", gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("anchor_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_post_id", sa.String(length=40), nullable=False),
        sa.Column("last_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_recurrences_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recurrences")),
    )
    with op.batch_alter_table("recurrences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recurrences_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recurrences_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recurrences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recurrences_status"))
        batch_op.drop_index(batch_op.f("ix_recurrences_organization_id"))
    op.drop_table("recurrences")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_org_created")
    op.drop_table("campaigns")
