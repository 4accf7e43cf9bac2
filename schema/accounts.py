"""Connected accounts: list, connect with credentials, update, disconnect. Credentials never leave."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

import gateway.accounts as service
from gateway.auth import find_owned_many
from gateway.core import UserError
from gateway.events import BusEvent
from gateway.storage import Account as AccountRow
from schema.context import Info
from schema.metrics import AccountMetricsType, account_metrics
from schema.payloads import UserErrorType, collect_user_errors, run_create, run_mutation
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one

AccountStatus = strawberry.enum(
    Enum("AccountStatus", {status.upper(): status for status in service.ACCOUNT_STATUSES}),  # type: ignore[misc]
    description="active, token_expired (reconnect), disconnected (credentials wiped) or rate_limited.",
)


@strawberry.type(name="SettingChoice", description="One value a per-post setting can take on one account.")
class SettingChoiceType:
    value: str = strawberry.field(description="What to put in the post's setting.")
    label: str = strawberry.field(description="What to show a person (the value when the platform gives no name).")
    extra: JSON = strawberry.field(description="Platform details of the choice (a board's privacy, a channel's member count…).")


@strawberry.type(name="Account", description="A platform identity connected to the organization.")
class AccountType(Node):
    id: strawberry.ID
    provider: str
    external_id: str = strawberry.field(description="The platform's own stable id for the account.")
    handle: str
    display_name: str
    account_type: str = strawberry.field(description="user, page, organization, channel, webhook…")
    status: AccountStatus  # type: ignore[valid-type]
    token_expires_at: datetime | None
    rate_limited_until: datetime | None
    metadata: JSON
    created_at: datetime
    disconnected_at: datetime | None

    @strawberry.field(description="The account's followers, following and posts over time (needs analytics:read).")
    def metrics(self, info: Info) -> AccountMetricsType:
        return account_metrics(info, str(self.id))

    @strawberry.field(
        description="The values `setting` can take on this account (its boards, channels, privacy levels…), for settings the "
        "provider declares with `choicesFromAccount`. Asked of the platform and kept a few minutes; `refresh` asks again. "
        "Errors: BAD_USER_INPUT (no such setting), ACCOUNT_DISCONNECTED, TOKEN_EXPIRED, RATE_LIMITED, PLATFORM_ERROR."
    )
    async def setting_choices(self, info: Info, setting: str, refresh: bool = False) -> list[SettingChoiceType]:
        organization_id = info.context.require("accounts:read").organization_id
        choices = await service.setting_choices(info.context.runtime).list(organization_id, str(self.id), setting, refresh=refresh)
        return [SettingChoiceType(value=c.value, label=c.label or c.value, extra=dict(c.extra)) for c in choices]

    @classmethod
    def from_row(cls, row: AccountRow) -> AccountType:
        return cls(
            id=strawberry.ID(row.id),
            provider=row.provider,
            external_id=row.external_id,
            handle=row.handle,
            display_name=row.display_name,
            account_type=row.account_type,
            status=AccountStatus(row.status),
            token_expires_at=row.token_expires_at,
            rate_limited_until=row.rate_limited_until,
            metadata=dict(row.metadata_),
            created_at=row.created_at,
            disconnected_at=row.disconnected_at,
        )


async def _owned(info: Info, id: str) -> AccountType | None:
    organization_id = info.context.principal.organization_id
    return await read_one(info, lambda session: service.find_account(session, organization_id, id), AccountType.from_row)


async def load_account(info: Info, id: str) -> AccountType | None:
    info.context.require("accounts:read")
    return await _owned(info, id)


@nodes_resolver("acct")
async def load_accounts(info: Info, ids: list[str]) -> dict[str, AccountType]:
    organization_id = info.context.require("accounts:read").organization_id
    return await read_many(info, lambda session: find_owned_many(session, AccountRow, "acct", organization_id, ids), AccountType.from_row)


@strawberry.input
class AccountFilter:
    provider: str | None = None
    status: AccountStatus | None = None  # type: ignore[valid-type]


@strawberry.input
class ConnectAccountInput:
    provider: str
    credentials: JSON = strawberry.field(description="The provider's credential form, field name → value.")
    idempotency_key: str | None = None


@strawberry.input
class UpdateAccountInput:
    id: strawberry.ID
    display_name: str | None = None
    metadata: JSON | None = strawberry.field(default=strawberry.UNSET, description='Merged: "" removes a key; null clears.')


@strawberry.input
class AccountIdInput:
    id: strawberry.ID


@strawberry.type
class AccountPayload:
    account: AccountType | None
    user_errors: list[UserErrorType]


def _credentials_of(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UserError("CREDENTIALS_NOT_OBJECT", "Credentials are an object of field name → string value.", ["credentials"])
    return value


@strawberry.type
class AccountQuery:
    @strawberry.field(description="Connected accounts, newest first.")
    async def accounts(
        self,
        info: Info,
        filter: AccountFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AccountType] | None:
        principal = info.context.require("accounts:read")
        filters = service.AccountFilter(
            provider=filter.provider if filter else None,
            status=filter.status.value if filter and filter.status else None,
        )
        async with info.context.read() as session:
            page = await service.list_accounts(session, principal.organization_id, filters, page_request(first, after, last, before))
        return Connection.from_page(page, AccountType.from_row)

    @strawberry.field(description="One account, or null when it is not in the caller's organization.")
    async def account(self, info: Info, id: strawberry.ID) -> AccountType | None:
        return await load_account(info, str(id))


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Connect an account of a credentials-form provider; checked with the platform first.")
    async def connect_account(self, info: Info, input: ConnectAccountInput) -> AccountPayload:
        runtime = info.context.runtime
        info.context.require("accounts:write")

        async def verify() -> Any:
            credentials = _credentials_of(input.credentials)
            return credentials, await service.verify_credentials(runtime, input.provider, credentials)

        verified, errors = await collect_user_errors(verify())
        if verified is None:
            return AccountPayload(account=None, user_errors=errors)
        credentials, profile = verified

        connected: list[BusEvent] = []  # stored with the account; published once that transaction committed

        async def work(session: Any, principal: Any) -> dict[str, Any]:
            saved = await service.save_account(session, runtime.secret_key, principal.organization_id, input.provider, profile, credentials)
            connected[:] = [saved.connected]
            return {"id": saved.account.id}

        request = service.connect_fingerprint(runtime.secret_key, input.provider, credentials)
        result, errors = await run_create(info, "accounts:write", "connectAccount", input.idempotency_key, request, work)
        if result and connected:
            await runtime.publish(connected[0])
        return AccountPayload(account=await _owned(info, result["id"]) if result else None, user_errors=errors)

    @strawberry.mutation(description="Rename an account or merge its metadata.")
    async def update_account(self, info: Info, input: UpdateAccountInput) -> AccountPayload:
        metadata_given = input.metadata is not strawberry.UNSET

        async def work(session: Any, principal: Any) -> AccountRow:
            return await service.update_account(
                session,
                principal.organization_id,
                str(input.id),
                display_name=input.display_name,
                metadata=input.metadata if metadata_given else None,
                metadata_given=metadata_given,
            )

        row, errors = await run_mutation(info, "accounts:write", work)
        return AccountPayload(account=AccountType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Wipe the account's credentials; the account and its history stay.")
    async def disconnect_account(self, info: Info, input: AccountIdInput) -> AccountPayload:
        row, errors = await run_mutation(
            info, "accounts:write", lambda session, principal: service.disconnect_account(session, principal.organization_id, str(input.id))
        )
        return AccountPayload(account=AccountType.from_row(row) if row else None, user_errors=errors)
