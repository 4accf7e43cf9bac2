"""media token hash: media_assets keeps only the SHA-256 of its URL token, never the token

Revision ID: 0004
Revises: 0003

The token in a media URL is now derived from the service's secret key (gateway.content.media_tokens), so
converting a row needs that key: ``socialgate migrate`` and ``socialgate serve`` hand it over in
the Alembic config's ``secret_key`` attribute. Every existing row gets the hash of its new token;
the plaintext column goes. URLs issued before the upgrade stop working: the API shows each asset's
new URL, and the engine builds a fresh one for every publish.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from gateway.content import access_token, token_hash

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ASSETS = sa.table("media_assets", sa.column("id", sa.String), sa.column("access_token", sa.String), sa.column("access_token_hash", sa.String))


def _secret_key() -> bytes:
    key = context.config.attributes.get("secret_key")
    if key is None:
        raise RuntimeError(
            "media_assets rows need the service's secret key to convert their URL tokens: "
            "run `socialgate migrate` (it passes the key) instead of alembic directly"
        )
    return key


def _convert(column: str, value: Any) -> None:
    """Rewrite every row's ``column`` as ``value(secret_key, media_id)``."""
    connection = op.get_bind()
    ids = connection.execute(sa.select(_ASSETS.c.id)).scalars().all()
    if not ids:
        return
    key = _secret_key()
    for media_id in ids:
        connection.execute(_ASSETS.update().where(_ASSETS.c.id == media_id).values({column: value(key, media_id)}))


def upgrade() -> None:
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_token_hash", sa.String(length=64), nullable=True))
    _convert("access_token_hash", lambda key, media_id: token_hash(access_token(key, media_id)))
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.alter_column("access_token_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("access_token")


def downgrade() -> None:
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_token", sa.String(length=64), nullable=True))
    _convert("access_token", access_token)
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.alter_column("access_token", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("access_token_hash")
