"""ads: ad accounts, campaigns/ad sets/ads, daily insights, and the organization's daily spend caps

Revision ID: 0010
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0010"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_TIME = gateway.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ad_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("synced_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ad_accounts_account_id_accounts")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_ad_accounts_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_accounts")),
        sa.UniqueConstraint("account_id", "external_id", name=op.f("uq_ad_accounts_account_id")),
    )
    with op.batch_alter_table("ad_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ad_accounts_organization_id"), ["organization_id"], unique=False)
    op.create_table(
        "ad_objects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("ad_account_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("parent_id", sa.String(length=40), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("effective_status", sa.String(length=80), nullable=True),
        sa.Column("objective", sa.String(length=80), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("daily_budget_minor", sa.BigInteger(), nullable=True),
        sa.Column("bid_minor", sa.BigInteger(), nullable=True),
        sa.Column("starts_at", UTC_TIME, nullable=True),
        sa.Column("ends_at", UTC_TIME, nullable=True),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.Column("synced_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["ad_account_id"], ["ad_accounts.id"], name=op.f("fk_ad_objects_ad_account_id_ad_accounts")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_ad_objects_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_objects")),
        sa.UniqueConstraint("ad_account_id", "level", "external_id", name=op.f("uq_ad_objects_ad_account_id")),
    )
    with op.batch_alter_table("ad_objects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ad_objects_ad_account_id"), ["ad_account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ad_objects_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index("ix_ad_objects_org_level_created", ["organization_id", "level", "created_at", "id"], unique=False)
    op.create_table(
        "ad_insights",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("ad_object_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=True),
        sa.Column("clicks", sa.BigInteger(), nullable=True),
        sa.Column("spend_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=True),
        sa.Column("conversions", sa.BigInteger(), nullable=True),
        sa.Column("fetched_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["ad_object_id"], ["ad_objects.id"], name=op.f("fk_ad_insights_ad_object_id_ad_objects")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_ad_insights_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_insights")),
        sa.UniqueConstraint("ad_object_id", "day", name=op.f("uq_ad_insights_ad_object_id")),
    )
    with op.batch_alter_table("ad_insights", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ad_insights_organization_id"), ["organization_id"], unique=False)
    op.create_table(
        "ad_spend_caps",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("daily_cap_minor", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_ad_spend_caps_organization_id_organizations")),
        sa.PrimaryKeyConstraint("organization_id", "currency", name=op.f("pk_ad_spend_caps")),
    )


def downgrade() -> None:
    op.drop_table("ad_spend_caps")
    with op.batch_alter_table("ad_insights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ad_insights_organization_id"))
    op.drop_table("ad_insights")
    with op.batch_alter_table("ad_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_ad_objects_org_level_created")
        batch_op.drop_index(batch_op.f("ix_ad_objects_parent_id"))
        batch_op.drop_index(batch_op.f("ix_ad_objects_ad_account_id"))
    op.drop_table("ad_objects")
    with op.batch_alter_table("ad_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ad_accounts_organization_id"))
    op.drop_table("ad_accounts")
