"""The database remembers which secret key it was first used with, so every process holds the same.

Why: provider credentials are sealed with the secret key (``gateway.storage.vault``). A worker
started with another key, or with none (then it generates its own), cannot open them, and every
target it claims would fail. So the first process to use a database records a fingerprint of its
key, and every later one compares its own and refuses to start on a mismatch.

The fingerprint is an HMAC of a fixed label under the key: it identifies the key and reveals
nothing of it. A database from before the fingerprint existed may already hold sealed
credentials: the key is then first checked against one of them, so the first process after the
upgrade cannot record a wrong key and lock out the right ones.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import utcnow
from gateway.storage.database import Database
from gateway.storage.models import Account, InstallationSetting
from gateway.storage.vault import VaultError, decrypt

FINGERPRINT = "secret_key_fingerprint"
LABEL = b"socialgate secret key fingerprint v1"


class SecretKeyMismatch(Exception):
    """The key is not the one the database was first used with (``recorded_at``), or opens none of
    the credentials already sealed in it (``recorded_at`` None)."""

    def __init__(self, recorded_at: datetime | None) -> None:
        self.recorded_at = recorded_at
        super().__init__("the secret key does not match the database")


def fingerprint(key: bytes) -> str:
    return "v1:" + hmac.new(key, LABEL, hashlib.sha256).hexdigest()


async def _tables(session: AsyncSession) -> set[str]:
    def names(sync_session: Any) -> set[str]:
        return set(inspect(sync_session.connection()).get_table_names())

    return await session.run_sync(names)


RECORDED = select(InstallationSetting).where(InstallationSetting.name == FINGERPRINT)


async def _opens_stored_credentials(session: AsyncSession, key: bytes) -> bool:
    """Whether ``key`` opens a credential already sealed in the database (True when there is none).

    Accounts seal their credentials with the account id as associated data (``gateway.accounts``).
    """
    sample = (
        await session.execute(select(Account.id, Account.credentials).where(Account.credentials.is_not(None)).limit(1))
    ).first()
    if sample is None:
        return True
    try:
        decrypt(key, sample.credentials, associated=sample.id)
    except VaultError:
        return False
    return True


def _check(recorded: InstallationSetting, key: bytes) -> None:
    if not hmac.compare_digest(recorded.value, fingerprint(key)):
        raise SecretKeyMismatch(recorded.created_at)


async def check_secret_key(database: Database, key: bytes) -> None:
    """Record ``key``'s fingerprint if the database has none yet; raise SecretKeyMismatch if it has another.

    A database not yet migrated this far has nowhere to record it: the key is then only checked
    against the credentials it holds, and recorded by the first start after the migration.
    """
    async with database.write() as session:
        tables = await _tables(session)
        if "installation_settings" in tables and (recorded := (await session.execute(RECORDED)).scalar_one_or_none()) is not None:
            _check(recorded, key)
            return
        if "accounts" in tables and not await _opens_stored_credentials(session, key):
            raise SecretKeyMismatch(None)
        if "installation_settings" not in tables:
            return
        # Two first starts at once: one row wins, and the loser compares its key with the winner's.
        insert = postgresql_insert if database.url.get_backend_name() == "postgresql" else sqlite_insert
        await session.execute(
            insert(InstallationSetting)
            .values(name=FINGERPRINT, value=fingerprint(key), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        _check((await session.execute(RECORDED)).scalar_one(), key)
