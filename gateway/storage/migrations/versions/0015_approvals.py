"""approvals (a post's stage and thread) and posting queues

Revision ID: 0015
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, gateway.storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("approval_stage", sa.String(length=20), nullable=True))
    op.create_table(
        "approval_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("post_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("author_key_id", sa.String(length=40), nullable=True),
        sa.Column("author_kind", sa.String(length=20), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_approval_entries_organization_id_organizations")),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name=op.f("fk_approval_entries_post_id_posts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_entries")),
    )
    op.create_index("ix_approval_entries_org_created", "approval_entries", ["organization_id", "created_at"])
    op.create_index(op.f("ix_approval_entries_post_id"), "approval_entries", ["post_id"])
    op.create_table(
        "posting_queues",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("account_scope", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("slots", sa.JSON(), nullable=False),
        sa.Column("max_per_slot", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_posting_queues_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting_queues")),
        sa.UniqueConstraint("organization_id", "account_scope", name=op.f("uq_posting_queues_organization_id")),
    )
    op.create_table(
        "queued_targets",
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        _when("slot_at"),
        _when("created_at"),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], name=op.f("fk_queued_targets_target_id_targets")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_queued_targets_organization_id_organizations")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_queued_targets_account_id_accounts")),
        sa.PrimaryKeyConstraint("target_id", name=op.f("pk_queued_targets")),
    )
    op.create_index(op.f("ix_queued_targets_account_id"), "queued_targets", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_queued_targets_account_id"), table_name="queued_targets")
    op.drop_table("queued_targets")
    op.drop_table("posting_queues")
    op.drop_index(op.f("ix_approval_entries_post_id"), table_name="approval_entries")
    op.drop_index("ix_approval_entries_org_created", table_name="approval_entries")
    op.drop_table("approval_entries")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("approval_stage")
