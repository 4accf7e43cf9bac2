"""API keys: list, create (secret shown once), rotate, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

import gateway.auth as service
from gateway.auth import find_owned_many
from gateway.storage import ApiKey as ApiKeyRow
from schema.context import Info
from schema.payloads import UserErrorType, run_create, run_mutation
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one


@strawberry.type(name="ApiKey", description="An API key. Its secret is only ever shown when it is created.")
class ApiKeyType(Node):
    id: strawberry.ID
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="Set when the key was rotated: the end of its grace.")
    revoked_at: datetime | None
    disabled: bool = strawberry.field(description="Turned off by its kill switch.")
    created_by_key_id: strawberry.ID | None
    rotated_from_id: strawberry.ID | None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKeyType:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            scopes=list(row.scopes),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            disabled=row.disabled,
            created_by_key_id=strawberry.ID(row.created_by_key_id) if row.created_by_key_id else None,
            rotated_from_id=strawberry.ID(row.rotated_from_id) if row.rotated_from_id else None,
        )


async def _owned(info: Info, id: str) -> ApiKeyType | None:
    principal = info.context.principal
    return await read_one(info, lambda session: service.find_key(session, principal, id), ApiKeyType.from_row)


async def load_api_key(info: Info, id: str) -> ApiKeyType | None:
    info.context.require("keys:read")
    return await _owned(info, id)


@nodes_resolver("key")
async def load_api_keys(info: Info, ids: list[str]) -> dict[str, ApiKeyType]:
    organization_id = info.context.require("keys:read").organization_id
    return await read_many(info, lambda session: find_owned_many(session, ApiKeyRow, "key", organization_id, ids), ApiKeyType.from_row)


@strawberry.input
class CreateApiKeyInput:
    scopes: list[str]
    name: str = ""
    idempotency_key: str | None = strawberry.field(
        default=None, description="A replay returns the key without its secret: the secret is never stored."
    )


@strawberry.input
class ApiKeyIdInput:
    id: strawberry.ID


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKeyType | None
    user_errors: list[UserErrorType]


@strawberry.type
class ApiKeyWithSecretPayload:
    api_key: ApiKeyType | None
    secret: str | None = strawberry.field(description="The full `sg_live_…` secret. Shown this once.")
    user_errors: list[UserErrorType]


@strawberry.type
class ApiKeyQuery:
    @strawberry.field(description="The organization's API keys, newest first.")
    async def api_keys(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> Connection[ApiKeyType] | None:
        principal = info.context.require("keys:read")
        async with info.context.runtime.database.read() as session:
            page = await service.list_keys(session, principal, page_request(first, after, last, before))
        return Connection.from_page(page, ApiKeyType.from_row)


@strawberry.type
class ApiKeyMutation:
    @strawberry.mutation(description="Mint a key whose scopes stay within the caller's (never org:admin).")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> ApiKeyWithSecretPayload:
        secrets: dict[str, str] = {}

        async def work(session: Any, principal: Any) -> dict[str, Any]:
            minted = await service.create_child_key(session, principal, input.name, input.scopes)
            secrets[minted.key.id] = minted.secret  # kept out of the stored replay result
            return {"id": minted.key.id}

        request = {"name": input.name, "scopes": sorted(input.scopes)}
        result, errors = await run_create(info, "keys:write", "createApiKey", input.idempotency_key, request, work)
        api_key = await _owned(info, result["id"]) if result else None
        secret = secrets.get(result["id"]) if result else None
        return ApiKeyWithSecretPayload(api_key=api_key, secret=secret, user_errors=errors)

    @strawberry.mutation(description="A new secret with the same scopes; the old secret works 24 more hours.")
    async def rotate_api_key(self, info: Info, input: ApiKeyIdInput) -> ApiKeyWithSecretPayload:
        minted, errors = await run_mutation(info, "keys:write", lambda s, p: service.rotate_key(s, p, str(input.id)))
        return ApiKeyWithSecretPayload(
            api_key=ApiKeyType.from_row(minted.key) if minted else None,
            secret=minted.secret if minted else None,
            user_errors=errors,
        )

    @strawberry.mutation(description="Revoke a key at once.")
    async def revoke_api_key(self, info: Info, input: ApiKeyIdInput) -> ApiKeyPayload:
        row, errors = await run_mutation(info, "keys:write", lambda s, p: service.revoke_key(s, p, str(input.id)))
        return ApiKeyPayload(api_key=ApiKeyType.from_row(row) if row else None, user_errors=errors)
