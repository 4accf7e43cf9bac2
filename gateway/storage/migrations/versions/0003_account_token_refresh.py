"""account token refresh: a credentials version, a refresh lease, an index for refresh-ahead

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credentials_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("refresh_lease_until", gateway.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_accounts_token_expiry", ["status", "token_expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_token_expiry")
        batch_op.drop_column("refresh_lease_until")
        batch_op.drop_column("credentials_version")
