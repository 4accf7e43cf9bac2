"""Ad accounts: found through a connected account's platform, listed, and called on.

Connecting ads reuses the accounts wing: an identity is connected as any other account (OAuth
for Meta and TikTok, a credentials form for Apple, none for the sandbox); ``connect_ad_accounts``
then asks the platform which ad accounts it reaches and records them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import find_account, open_credentials, require_provider
from gateway.ads.events import ACCOUNT_CONNECTED, publish_all
from gateway.auth import find_owned
from gateway.core import Page, PageRequest, UserError, new_id, paginate
from gateway.events import BusEvent, record_org_event
from gateway.runtime import Runtime
from gateway.storage import Account, AdAccount
from providers import AdAccountRef, AdsAdapter, ProviderContext


@dataclass(frozen=True)
class AdsCall:
    """Everything one adapter call on one ad account needs."""

    ad_account: AdAccount
    adapter: AdsAdapter
    ctx: ProviderContext
    ref: AdAccountRef


def _adapter(runtime: Runtime, provider_id: str, field: list[str]) -> AdsAdapter:
    provider = require_provider(runtime.plugins, provider_id)
    if provider.ads is None:
        raise UserError("ADS_NOT_SUPPORTED", f"{provider.name} does not run ads.", field)
    return provider.ads


def _context(runtime: Runtime, account: Account) -> ProviderContext:
    return runtime.provider_context(account.provider, account.id, open_credentials(runtime.secret_key, account))


async def find_ad_account(session: AsyncSession, organization_id: str, ad_account_id: str) -> AdAccount | None:
    return await find_owned(session, AdAccount, "adacct", organization_id, ad_account_id)


async def ads_call(runtime: Runtime, session: AsyncSession, ad_account: AdAccount) -> AdsCall:
    """The adapter, a context with the connected account's credentials, and the account reference."""
    account = await session.get(Account, ad_account.account_id)
    if account is None or account.status == "disconnected":
        raise UserError("ACCOUNT_DISCONNECTED", "The account this ad account was reached through is disconnected.", ["adAccountId"])
    adapter = _adapter(runtime, account.provider, ["adAccountId"])
    return AdsCall(ad_account, adapter, _context(runtime, account), AdAccountRef(ad_account.external_id, ad_account.currency))


async def connect_ad_accounts(runtime: Runtime, organization_id: str, account_id: str) -> list[AdAccount]:
    """Ask the platform which ad accounts ``account_id`` reaches and record them (new ones emit
    ``ads.account.connected``). Provider errors propagate for the caller to map."""
    async with runtime.database.read() as session:
        account = await find_account(session, organization_id, account_id)
        if account is None:
            raise UserError("ACCOUNT_NOT_FOUND", "No account with that id.", ["accountId"])
        adapter = _adapter(runtime, account.provider, ["accountId"])
        ctx = _context(runtime, account)
    found = await adapter.list_ad_accounts(ctx)
    events: list[BusEvent] = []
    async with runtime.database.write() as session:
        existing = {
            row.external_id: row
            for row in (await session.execute(select(AdAccount).where(AdAccount.account_id == account_id))).scalars()
        }
        rows = []
        for info in found:
            row = existing.get(info.external_id)
            if row is None:
                row = AdAccount(id=new_id("adacct"), organization_id=organization_id, account_id=account_id, provider=account.provider,
                                external_id=info.external_id, currency=info.currency)
                session.add(row)
                await session.flush()
                events.append(await record_org_event(session, organization_id, ACCOUNT_CONNECTED, {  # event kinds: ads.*
                    "adAccountId": row.id, "accountId": account_id, "provider": account.provider,
                    "externalId": info.external_id, "currency": info.currency,
                }, row.id))
            row.name, row.currency, row.timezone, row.status = info.name[:255], info.currency, info.timezone, "active"
            rows.append(row)
    await publish_all(runtime, events)
    return rows


async def list_ad_accounts(session: AsyncSession, organization_id: str, page: PageRequest, provider: str | None = None) -> Page[AdAccount]:
    query = select(AdAccount).where(AdAccount.organization_id == organization_id)
    if provider is not None:
        query = query.where(AdAccount.provider == provider)
    return await paginate(session, query, AdAccount, page)

