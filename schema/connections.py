"""OAuth connections: start one, poll it, and manage the redirect URIs it may return to."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

import gateway.accounts as service
from gateway.auth import find_owned_many
from gateway.orgs import get_organization
from gateway.storage import Connection as ConnectionRow
from schema.accounts import AccountType
from schema.context import Info
from schema.payloads import UserErrorType, run_mutation
from schema.relay import Node, nodes_resolver, read_many, read_one

ConnectionStatus = strawberry.enum(
    Enum("ConnectionStatus", {status.upper(): status for status in (service.PENDING, service.SUCCEEDED, service.FAILED)}),  # type: ignore[misc]
    description="pending (waiting for the user and the platform), succeeded (see `account`) or failed (see `errorCode`).",
)


@strawberry.type(name="Connection", description="An OAuth handshake that becomes an Account when the user consents.")
class ConnectionType(Node):
    id: strawberry.ID
    provider: str
    status: ConnectionStatus  # type: ignore[valid-type]
    error_code: str | None = strawberry.field(
        description="Why it failed: CONSENT_DENIED, AUTHORIZATION_FAILED, STATE_EXPIRED, STATE_INVALID, CODE_MISSING, "
        "OAUTH_NOT_CONFIGURED, EXCHANGE_FAILED or PROFILE_FAILED."
    )
    error_message: str | None
    redirect_uri: str = strawberry.field(description="Where the browser is sent when the handshake ends.")
    expires_at: datetime = strawberry.field(description="The user must finish consenting before this (10 minutes).")
    created_at: datetime
    completed_at: datetime | None
    account_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: ConnectionRow) -> ConnectionType:
        state = service.connection_state(row)
        return cls(
            id=strawberry.ID(row.id),
            provider=row.provider,
            status=ConnectionStatus(state.status),
            error_code=state.error_code,
            error_message=state.error_message,
            redirect_uri=row.redirect_uri,
            expires_at=row.expires_at,
            created_at=row.created_at,
            completed_at=row.completed_at,
            account_id=row.account_id,
        )

    @strawberry.field(description="The connected account, once the handshake succeeded.")
    async def account(self, info: Info) -> AccountType | None:
        if self.account_id is None:
            return None
        row = await info.context.loaders.accounts.load(self.account_id)
        return AccountType.from_row(row) if row else None


@nodes_resolver("conn")
async def load_connections(info: Info, ids: list[str]) -> dict[str, ConnectionType]:
    organization_id = info.context.require("accounts:read").organization_id
    return await read_many(
        info, lambda session: find_owned_many(session, ConnectionRow, "conn", organization_id, ids), ConnectionType.from_row
    )


async def load_connection(info: Info, id: str) -> ConnectionType | None:
    principal = info.context.require("accounts:read")
    return await read_one(info, lambda session: service.find_connection(session, principal.organization_id, id), ConnectionType.from_row)


@strawberry.input
class StartConnectionInput:
    provider: str
    redirect_uri: str = strawberry.field(
        description="Where to send the browser afterwards, with `connection_id`, `status` and `error` added to its query. "
        "Must match one of the organization's OAuth redirect URIs (scheme, host, port and path)."
    )


@strawberry.type
class StartConnectionPayload:
    connection: ConnectionType | None
    authorize_url: str | None = strawberry.field(description="Send the user's browser here to consent. Shown once.")
    user_errors: list[UserErrorType]


@strawberry.input
class SetOAuthRedirectUrisInput:
    redirect_uris: list[str] = strawberry.field(
        description="The whole list (it replaces the previous one): absolute https URIs without query or fragment; "
        "http only for localhost and loopback addresses."
    )


@strawberry.type
class OAuthRedirectUrisPayload:
    redirect_uris: list[str] | None
    user_errors: list[UserErrorType]


@strawberry.type
class ConnectionQuery:
    @strawberry.field(description="One OAuth handshake, to poll until it succeeds or fails; null outside the caller's organization.")
    async def connection(self, info: Info, id: strawberry.ID) -> ConnectionType | None:
        return await load_connection(info, str(id))

    @strawberry.field(name="oauthRedirectUris", description="Where OAuth handshakes of the caller's organization may return to.")
    async def oauth_redirect_uris(self, info: Info) -> list[str] | None:
        principal = info.context.require("org:read")
        async with info.context.runtime.database.read() as session:
            return service.redirect_uris_of(await get_organization(session, principal.organization_id))


@strawberry.type
class ConnectionMutation:
    @strawberry.mutation(description="Start connecting an OAuth provider's account: returns the URL to send the user to.")
    async def start_connection(self, info: Info, input: StartConnectionInput) -> StartConnectionPayload:
        runtime = info.context.runtime

        async def work(session: Any, principal: Any) -> service.StartedConnection:
            return await service.start_connection(session, runtime, principal.organization_id, input.provider, input.redirect_uri)

        started, errors = await run_mutation(info, "accounts:write", work)
        if started is None:
            return StartConnectionPayload(connection=None, authorize_url=None, user_errors=errors)
        return StartConnectionPayload(connection=ConnectionType.from_row(started.connection), authorize_url=started.authorize_url, user_errors=[])

    @strawberry.mutation(
        name="setOAuthRedirectUris", description="Replace the organization's allowed OAuth redirect URIs (needs org:admin)."
    )
    async def set_oauth_redirect_uris(self, info: Info, input: SetOAuthRedirectUrisInput) -> OAuthRedirectUrisPayload:
        uris, errors = await run_mutation(
            info, "org:admin", lambda session, principal: service.set_redirect_uris(session, principal.organization_id, input.redirect_uris)
        )
        return OAuthRedirectUrisPayload(redirect_uris=uris, user_errors=errors)
