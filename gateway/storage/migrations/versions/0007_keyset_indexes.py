"""indexes that end in (created_at, id) for every paginated list, so a cursor bounds the index range

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_organizations_parent_created": ("organizations", ["parent_id", "created_at", "id"]),
    "ix_api_keys_org_created": ("api_keys", ["organization_id", "created_at", "id"]),
    "ix_accounts_org_created": ("accounts", ["organization_id", "created_at", "id"]),
    "ix_media_assets_org_created": ("media_assets", ["organization_id", "created_at", "id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
