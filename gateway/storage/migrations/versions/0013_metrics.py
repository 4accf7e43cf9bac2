"""metrics: target and account snapshots, the latest figures per target, per-account metric state

Revision ID: 0013
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.storage.types

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.create_index("ix_targets_published", ["status", "published_at"], unique=False)
    op.create_table('account_metric_snapshots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('organization_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('captured_at', gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('followers', sa.BigInteger(), nullable=True),
    sa.Column('following', sa.BigInteger(), nullable=True),
    sa.Column('posts', sa.BigInteger(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_metric_snapshots_account_id_accounts')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_account_metric_snapshots_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_metric_snapshots'))
    )
    with op.batch_alter_table('account_metric_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_metric_snapshots_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_account_metric_snapshots_series', ['account_id', 'captured_at'], unique=False)

    op.create_table('account_metrics_state',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('organization_id', sa.String(length=40), nullable=False),
    sa.Column('paused_until', gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pause_reason', sa.String(length=64), nullable=True),
    sa.Column('next_account_refresh_at', gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_metrics_state_account_id_accounts')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_account_metrics_state_organization_id_organizations')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_metrics_state'))
    )
    with op.batch_alter_table('account_metrics_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_metrics_state_organization_id'), ['organization_id'], unique=False)

    op.create_table('target_metric_snapshots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('organization_id', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=40), nullable=False),
    sa.Column('captured_at', gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('views', sa.BigInteger(), nullable=True),
    sa.Column('reach', sa.BigInteger(), nullable=True),
    sa.Column('likes', sa.BigInteger(), nullable=True),
    sa.Column('comments', sa.BigInteger(), nullable=True),
    sa.Column('shares', sa.BigInteger(), nullable=True),
    sa.Column('reposts', sa.BigInteger(), nullable=True),
    sa.Column('quotes', sa.BigInteger(), nullable=True),
    sa.Column('saves', sa.BigInteger(), nullable=True),
    sa.Column('clicks', sa.BigInteger(), nullable=True),
    sa.Column('video_watch_seconds', sa.BigInteger(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_target_metric_snapshots_organization_id_organizations')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_target_metric_snapshots_target_id_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_target_metric_snapshots'))
    )
    with op.batch_alter_table('target_metric_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_target_metric_snapshots_org', ['organization_id', 'captured_at'], unique=False)
        batch_op.create_index('ix_target_metric_snapshots_series', ['target_id', 'captured_at'], unique=False)

    op.create_table('target_metrics',
    sa.Column('target_id', sa.String(length=40), nullable=False),
    sa.Column('organization_id', sa.String(length=40), nullable=False),
    sa.Column('post_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=True),
    sa.Column('published_at', gateway.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_refresh_at', gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refreshed_at', gateway.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('views', sa.BigInteger(), nullable=True),
    sa.Column('reach', sa.BigInteger(), nullable=True),
    sa.Column('likes', sa.BigInteger(), nullable=True),
    sa.Column('comments', sa.BigInteger(), nullable=True),
    sa.Column('shares', sa.BigInteger(), nullable=True),
    sa.Column('reposts', sa.BigInteger(), nullable=True),
    sa.Column('quotes', sa.BigInteger(), nullable=True),
    sa.Column('saves', sa.BigInteger(), nullable=True),
    sa.Column('clicks', sa.BigInteger(), nullable=True),
    sa.Column('video_watch_seconds', sa.BigInteger(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_target_metrics_account_id_accounts')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_target_metrics_organization_id_organizations')),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_target_metrics_post_id_posts')),
    sa.ForeignKeyConstraint(['target_id'], ['targets.id'], name=op.f('fk_target_metrics_target_id_targets')),
    sa.PrimaryKeyConstraint('target_id', name=op.f('pk_target_metrics'))
    )
    with op.batch_alter_table('target_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_target_metrics_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_target_metrics_due', ['next_refresh_at'], unique=False)
        batch_op.create_index('ix_target_metrics_org_published', ['organization_id', 'published_at', 'post_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_target_metrics_post_id'), ['post_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('target_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_target_metrics_post_id'))
        batch_op.drop_index('ix_target_metrics_org_published')
        batch_op.drop_index('ix_target_metrics_due')
        batch_op.drop_index(batch_op.f('ix_target_metrics_account_id'))

    op.drop_table('target_metrics')
    with op.batch_alter_table('target_metric_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_target_metric_snapshots_series')
        batch_op.drop_index('ix_target_metric_snapshots_org')

    op.drop_table('target_metric_snapshots')
    with op.batch_alter_table('account_metrics_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_metrics_state_organization_id'))

    op.drop_table('account_metrics_state')
    with op.batch_alter_table('account_metric_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_account_metric_snapshots_series')
        batch_op.drop_index(batch_op.f('ix_account_metric_snapshots_organization_id'))

    op.drop_table('account_metric_snapshots')
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.drop_index("ix_targets_published")
