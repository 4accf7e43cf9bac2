"""``ProviderStore`` on the gateway's database: the ``provider_records`` table.

Each store is bound to one (provider, account) pair when the runtime builds a ProviderContext, so
a plugin can only ever see its own records for the account it is acting for.

Records are sealed with the vault like credentials are: providers keep session and refresh tokens
here (Bluesky's refreshJwt lives for months), so the table must be as useless to a reader of the
database file as the accounts table is. Each record is bound to its (provider, account, kind,
key): a sealed value copied onto another row does not open there.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.core import utcnow
from gateway.storage import Database
from gateway.storage.models import ProviderRecord
from gateway.storage.vault import decrypt, encrypt


class DatabaseProviderStore:
    def __init__(self, database: Database, provider_id: str, account_id: str | None, secret_key: bytes) -> None:
        self._database = database
        self._provider = provider_id
        self._scope = account_id or ""
        self._key = secret_key

    def _bound(self, kind: str, key: str) -> str:
        return json.dumps([self._provider, self._scope, kind, key])

    def _seal(self, kind: str, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return {"sealed": base64.b64encode(encrypt(self._key, document, associated=self._bound(kind, key))).decode()}

    def _open(self, kind: str, key: str, stored: Mapping[str, Any]) -> dict[str, Any]:
        return decrypt(self._key, base64.b64decode(stored["sealed"]), associated=self._bound(kind, key))

    def _where(self, kind: str) -> tuple[Any, ...]:
        return (
            ProviderRecord.provider == self._provider,
            ProviderRecord.account_scope == self._scope,
            ProviderRecord.kind == kind,
        )

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        async with self._database.read() as session:
            value = (
                await session.execute(select(ProviderRecord.value).where(*self._where(kind), ProviderRecord.key == key))
            ).scalar_one_or_none()
        return None if value is None else self._open(kind, key, value)

    async def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        # A JSON round trip refuses what the column could not hold before touching the database.
        document = json.loads(json.dumps(dict(value)))
        sealed = self._seal(kind, key, document)
        # One upsert, not a read then a write: two calls of one account putting the same key at
        # once (PostgreSQL runs them truly concurrently) must not collide on the unique key.
        insert = postgresql_insert if self._database.url.get_backend_name() == "postgresql" else sqlite_insert
        statement = insert(ProviderRecord).values(
            provider=self._provider, account_scope=self._scope, kind=kind, key=key, value=sealed,
            created_at=utcnow(), updated_at=utcnow(),
        )
        statement = statement.on_conflict_do_update(
            index_elements=["provider", "account_scope", "kind", "key"],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
        async with self._database.write() as session:
            await session.execute(statement)

    async def delete(self, kind: str, key: str) -> bool:
        async with self._database.write() as session:
            result = await session.execute(delete(ProviderRecord).where(*self._where(kind), ProviderRecord.key == key))
        return bool(result.rowcount)

    async def list(self, kind: str, *, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        async with self._database.read() as session:
            rows = (
                await session.execute(
                    select(ProviderRecord.key, ProviderRecord.value)
                    .where(*self._where(kind))
                    .order_by(ProviderRecord.created_at, ProviderRecord.id)
                    .limit(limit)
                )
            ).all()
        return [(key, self._open(kind, key, value)) for key, value in rows]
