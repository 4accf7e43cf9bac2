"""processing: a target whose publish the platform accepted but is still processing

Revision ID: 0016
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0016"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.add_column(sa.Column("processing_handle", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("processing_stage", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("processing_published", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("processing_deadline", gateway.storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("processing_deadline")
        batch.drop_column("processing_published")
        batch.drop_column("processing_stage")
        batch.drop_column("processing_handle")
