"""the post-status trigger reads the post's targets once, where it searched them once per status

Revision ID: 0020
Revises: 0017
"""

from __future__ import annotations

from alembic import op

from gateway.content import install_status_triggers

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database migrated through 0017 before holds its triggers' first form: an EXISTS per
    # status. They go, the one-pass form (gateway.content.post_status) comes in, and every post's
    # status is recomputed, unchanged since both forms follow the same rules.
    install_status_triggers(op.execute, op.get_bind().dialect)


def downgrade() -> None:
    # 0017 installs what install_status_triggers writes today, so that is what 0017 leaves.
    install_status_triggers(op.execute, op.get_bind().dialect)
