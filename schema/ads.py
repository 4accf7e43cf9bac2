"""Ads: ad accounts, campaigns, ad sets and ads, their insights, the spend cap, and writes as jobs.

Reads need ``ads:read``. Writes need the ``ads:write:*`` sub-scope of what they change:
``campaigns`` (create or change campaigns and ad sets), ``budgets`` (any daily budget or bid),
``creative`` (ads), ``lifecycle`` (status). A refusal for a missing scope is FORBIDDEN and is
also recorded as ``ads.write.denied``. Money is ``Money {amountMinor, currency, formatted}``,
with ``amountMinor`` an ``Int64``: GraphQL's ``Int`` stops at 2^31 - 1, a budget does not.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gateway.ads import accounts as ad_accounts
from gateway.ads import caps, writes
from gateway.ads import objects as ad_objects
from gateway.ads.insights import DailyFigures, daily_figures
from gateway.ads.money import formatted, money_input
from gateway.ads.sync import sync_ad_account
from gateway.auth import find_owned_many, has_scope
from gateway.core import Forbidden, UserError
from gateway.engine import queue
from gateway.storage import AdAccount as AdAccountRow
from gateway.storage import AdObject as AdObjectRow
from gateway.storage import AdSpendCap as AdSpendCapRow
from providers import AdChanges, AdSpec, Money, ProviderError
from providers.ads import AD_STATUSES
from schema.context import Info
from schema.jobs import JobType
from schema.payloads import UserErrorType, collect_user_errors
from schema.relay import Connection, Node, nodes_resolver, page_request, read_many, read_one
from schema.scalars import Int64

MAX_INSIGHT_DAYS = 366


AdStatus = strawberry.enum(
    Enum("AdStatus", {status.upper(): status for status in AD_STATUSES}),  # type: ignore[misc]
    description="What was asked for: active, paused, archived or deleted (the platform's own word is `effectiveStatus`).",
)


@strawberry.type(name="Money", description="An exact amount: an integer of the currency's ISO 4217 minor unit (USD cents, JPY yen, KWD fils).")
class MoneyType:
    amount_minor: Int64  # type: ignore[valid-type]
    currency: str = strawberry.field(description="ISO 4217 code.")

    @strawberry.field(description="For people (e.g. `$12.34`); never parse it.")
    def formatted(self) -> str:
        return formatted(Money(self.amount_minor, self.currency))

    @classmethod
    def of(cls, money: Money | None) -> MoneyType | None:
        return None if money is None else cls(amount_minor=money.amount_minor, currency=money.currency)


@strawberry.input(description="An amount in the currency's minor unit: 12.34 USD is {amountMinor: \"1234\", currency: \"USD\"}.")
class MoneyInput:
    amount_minor: Int64  # type: ignore[valid-type]
    currency: str


def _money(value: MoneyInput | None, field: str) -> Money | None:
    return None if value is None else money_input(value.amount_minor, value.currency, ["input", field])


@strawberry.type(name="AdDrift", description="A field a sync found changed on the platform; ours was kept.")
class AdDriftType:
    field: str
    ours: JSON | None
    platform: JSON | None


@strawberry.type(name="AdInsightDay", description="One day of delivery. Null = not reported by the platform (not zero).")
class AdInsightDayType:
    day: date
    impressions: Int64 | None  # type: ignore[valid-type]
    clicks: Int64 | None  # type: ignore[valid-type]
    spend: MoneyType | None
    reach: Int64 | None  # type: ignore[valid-type]
    conversions: Int64 | None  # type: ignore[valid-type]
    cpm: Decimal | None = strawberry.field(description="Spend per 1,000 impressions, in major units, 6 places half-even.")
    cpc: Decimal | None = strawberry.field(description="Spend per click, in major units, 6 places half-even.")
    ctr: Decimal | None = strawberry.field(description="Clicks per impression (0.02 = 2 %), 6 places half-even.")

    @classmethod
    def of(cls, figures: DailyFigures) -> AdInsightDayType:
        return cls(day=figures.day, impressions=figures.impressions, clicks=figures.clicks, spend=MoneyType.of(figures.spend),
                   reach=figures.reach, conversions=figures.conversions, cpm=figures.cpm, cpc=figures.cpc, ctr=figures.ctr)


def _fields(row: AdObjectRow) -> dict[str, Any]:
    return {
        "id": strawberry.ID(row.id), "ad_account_id": strawberry.ID(row.ad_account_id), "external_id": row.external_id,
        "name": row.name, "status": AdStatus(row.status), "effective_status": row.effective_status,
        "drift": [AdDriftType(field=k, ours=v.get("ours"), platform=v.get("platform")) for k, v in sorted((row.drift or {}).items())],
        "synced_at": row.synced_at, "created_at": row.created_at,
    }


async def _insights(info: Info, object_id: str, start: date, end: date) -> list[AdInsightDayType]:
    if end < start or (end - start).days >= MAX_INSIGHT_DAYS:
        raise UserError("DATE_RANGE_INVALID", f"`to` is on or after `from`, at most {MAX_INSIGHT_DAYS} days on.", ["to"])
    async with info.context.runtime.database.read() as session:
        return [AdInsightDayType.of(f) for f in await daily_figures(session, object_id, start, end)]


async def _children(info: Info, parent_id: str) -> list[AdObjectRow]:
    return await info.context.loaders.ad_children.load(parent_id)


@strawberry.type(name="Ad", description="An ad: a creative delivered under an ad set.")
class AdType(Node):
    id: strawberry.ID
    ad_account_id: strawberry.ID
    ad_set_id: strawberry.ID | None
    external_id: str = strawberry.field(description="The platform's id (TikTok's int64 as a string; Apple's campaign/adGroup/ad).")
    name: str
    status: AdStatus  # type: ignore[valid-type]
    effective_status: str | None = strawberry.field(description="The platform's own delivery state, verbatim.")
    drift: list[AdDriftType]
    synced_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: AdObjectRow) -> AdType:
        return cls(ad_set_id=strawberry.ID(row.parent_id) if row.parent_id else None, **_fields(row))


@strawberry.type(name="AdSet", description="An ad set (TikTok and Apple: ad group): budget, bid and schedule under a campaign.")
class AdSetType(Node):
    id: strawberry.ID
    ad_account_id: strawberry.ID
    campaign_id: strawberry.ID | None
    external_id: str
    name: str
    status: AdStatus  # type: ignore[valid-type]
    effective_status: str | None
    daily_budget: MoneyType | None
    bid: MoneyType | None
    starts_at: datetime | None
    ends_at: datetime | None
    drift: list[AdDriftType]
    synced_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: AdObjectRow) -> AdSetType:
        return cls(campaign_id=strawberry.ID(row.parent_id) if row.parent_id else None, daily_budget=MoneyType.of(ad_objects.money_of(row, "daily_budget_minor")),
                   bid=MoneyType.of(ad_objects.money_of(row, "bid_minor")), starts_at=row.starts_at, ends_at=row.ends_at, **_fields(row))

    @strawberry.field(description="The set's ads, oldest first.")
    async def ads(self, info: Info) -> list[AdType]:
        return [AdType.from_row(r) for r in await _children(info, str(self.id))]


@strawberry.type(name="AdCampaign", description="An ad campaign as the platform last accepted it.")
class AdCampaignType(Node):
    id: strawberry.ID
    ad_account_id: strawberry.ID
    external_id: str
    name: str
    objective: str | None
    status: AdStatus  # type: ignore[valid-type]
    effective_status: str | None = strawberry.field(description="Meta effective_status, TikTok secondary_status, Apple servingStatus.")
    daily_budget: MoneyType | None
    starts_at: datetime | None
    ends_at: datetime | None
    drift: list[AdDriftType] = strawberry.field(description="What a sync found changed on the platform; empty when in step.")
    synced_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: AdObjectRow) -> AdCampaignType:
        return cls(objective=row.objective, daily_budget=MoneyType.of(ad_objects.money_of(row, "daily_budget_minor")),
                   starts_at=row.starts_at, ends_at=row.ends_at, **_fields(row))

    @strawberry.field(name="adSets", description="The campaign's ad sets, oldest first.")
    async def ad_sets(self, info: Info) -> list[AdSetType]:
        return [AdSetType.from_row(r) for r in await _children(info, str(self.id))]

    @strawberry.field(description="Daily figures from `from` to `to` inclusive, as last synced.")
    async def insights(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date) -> list[AdInsightDayType]:
        return await _insights(info, str(self.id), from_, to)


@strawberry.type(name="AdAccount", description="An ad account a connected account reaches: a Meta act_…, a TikTok advertiser, an Apple org.")
class AdAccountType(Node):
    id: strawberry.ID
    account_id: strawberry.ID = strawberry.field(description="The connected account it was reached through.")
    provider: str
    external_id: str
    name: str
    currency: str
    timezone: str | None
    status: str
    synced_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: AdAccountRow) -> AdAccountType:
        return cls(id=strawberry.ID(row.id), account_id=strawberry.ID(row.account_id), provider=row.provider, external_id=row.external_id,
                   name=row.name, currency=row.currency, timezone=row.timezone, status=row.status, synced_at=row.synced_at, created_at=row.created_at)


@strawberry.type(name="AdSpendCap", description="The most the organization's campaigns and ad sets may budget per day, in one currency.")
class AdSpendCapType:
    daily_cap: MoneyType

    @classmethod
    def from_row(cls, row: AdSpendCapRow) -> AdSpendCapType:
        return cls(daily_cap=MoneyType(amount_minor=row.daily_cap_minor, currency=row.currency))


CONVERT = {"campaign": AdCampaignType.from_row, "ad_set": AdSetType.from_row, "ad": AdType.from_row}


def _ads_reader(prefix: str) -> Any:
    @nodes_resolver(prefix)
    async def load(info: Info, ids: list[str]) -> dict[str, Any]:
        organization_id = info.context.require("ads:read").organization_id
        level = ad_objects.LEVEL_OF_PREFIX[prefix]
        return await read_many(info, lambda session: find_owned_many(session, AdObjectRow, prefix, organization_id, ids), CONVERT[level])

    return load


load_campaigns, load_ad_sets, load_ads = (_ads_reader(p) for p in ("adc", "adset", "adv"))


@nodes_resolver("adacct")
async def load_ad_accounts(info: Info, ids: list[str]) -> dict[str, AdAccountType]:
    organization_id = info.context.require("ads:read").organization_id
    return await read_many(info, lambda session: find_owned_many(session, AdAccountRow, "adacct", organization_id, ids), AdAccountType.from_row)


async def _load_object(info: Info, object_id: str, level: str) -> Any:
    organization_id = info.context.require("ads:read").organization_id
    return await read_one(info, lambda session: ad_objects.find_object(session, organization_id, object_id, level), CONVERT[level])


@strawberry.input
class AdCampaignFilter:
    ad_account_id: strawberry.ID | None = None
    status: AdStatus | None = None  # type: ignore[valid-type]


@strawberry.type
class AdsQuery:
    @strawberry.field(name="adAccounts", description="Ad accounts reached through connected accounts, newest first.")
    async def ad_accounts(self, info: Info, provider: str | None = None, first: int | None = None, after: str | None = None,
                          last: int | None = None, before: str | None = None) -> Connection[AdAccountType] | None:
        principal = info.context.require("ads:read")
        async with info.context.runtime.database.read() as session:
            page = await ad_accounts.list_ad_accounts(session, principal.organization_id, page_request(first, after, last, before), provider)
        return Connection.from_page(page, AdAccountType.from_row)

    @strawberry.field(name="adCampaigns", description="Ad campaigns, newest first.")
    async def ad_campaigns(self, info: Info, filter: AdCampaignFilter | None = None, first: int | None = None, after: str | None = None,
                           last: int | None = None, before: str | None = None) -> Connection[AdCampaignType] | None:
        principal = info.context.require("ads:read")
        async with info.context.runtime.database.read() as session:
            page = await ad_objects.list_objects(
                session, principal.organization_id, "campaign", page_request(first, after, last, before),
                ad_account_id=str(filter.ad_account_id) if filter and filter.ad_account_id else None,
                status=filter.status.value if filter and filter.status else None,
            )
        return Connection.from_page(page, AdCampaignType.from_row)

    @strawberry.field(name="adCampaign")
    async def ad_campaign(self, info: Info, id: strawberry.ID) -> AdCampaignType | None:
        return await _load_object(info, str(id), "campaign")

    @strawberry.field(name="adSet")
    async def ad_set(self, info: Info, id: strawberry.ID) -> AdSetType | None:
        return await _load_object(info, str(id), "ad_set")

    @strawberry.field
    async def ad(self, info: Info, id: strawberry.ID) -> AdType | None:
        return await _load_object(info, str(id), "ad")

    @strawberry.field(name="adSpendCaps", description="The organization's daily spend caps, by currency.")
    async def ad_spend_caps(self, info: Info) -> list[AdSpendCapType] | None:
        principal = info.context.require("ads:read")
        async with info.context.runtime.database.read() as session:
            return [AdSpendCapType.from_row(r) for r in await caps.list_caps(session, principal.organization_id)]


# -- writes ---------------------------------------------------------------------------------------


@strawberry.input
class CreateAdCampaignInput:
    ad_account_id: strawberry.ID
    name: str
    objective: str | None = strawberry.field(default=None, description="The platform's objective word (Meta OUTCOME_TRAFFIC, TikTok TRAFFIC).")
    daily_budget: MoneyInput | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: AdStatus = AdStatus("paused")  # type: ignore[valid-type]
    platform_fields: JSON | None = strawberry.field(default=None, description="Sent as given: what only this platform asks for (Apple adamId…).")
    idempotency_key: str | None = None


@strawberry.input
class CreateAdSetInput:
    campaign_id: strawberry.ID
    name: str
    daily_budget: MoneyInput | None = None
    bid: MoneyInput | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: AdStatus = AdStatus("paused")  # type: ignore[valid-type]
    platform_fields: JSON | None = None
    idempotency_key: str | None = None


@strawberry.input
class CreateAdInput:
    ad_set_id: strawberry.ID
    name: str
    creative_id: str | None = None
    status: AdStatus = AdStatus("paused")  # type: ignore[valid-type]
    platform_fields: JSON | None = None
    idempotency_key: str | None = None


@strawberry.input(description="What to change; an omitted field stays as it is.")
class UpdateAdObjectInput:
    id: strawberry.ID
    name: str | None = None
    daily_budget: MoneyInput | None = None
    bid: MoneyInput | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    idempotency_key: str | None = None


@strawberry.input
class SetAdStatusInput:
    id: strawberry.ID
    status: AdStatus  # type: ignore[valid-type]
    idempotency_key: str | None = None


@strawberry.input
class AccountRefInput:
    account_id: strawberry.ID


@strawberry.input
class AdAccountRefInput:
    ad_account_id: strawberry.ID


@strawberry.input
class SetAdSpendCapInput:
    daily_cap: MoneyInput


@strawberry.input
class RemoveAdSpendCapInput:
    currency: str


@strawberry.type
class AdCampaignPayload:
    job: JobType | None = strawberry.field(description="The write's job: succeeded once the platform accepted, failed with the reason.")
    ad_campaign: AdCampaignType | None
    user_errors: list[UserErrorType]


@strawberry.type
class AdSetPayload:
    job: JobType | None
    ad_set: AdSetType | None
    user_errors: list[UserErrorType]


@strawberry.type
class AdPayload:
    job: JobType | None
    ad: AdType | None
    user_errors: list[UserErrorType]


@strawberry.type
class ConnectAdAccountsPayload:
    ad_accounts: list[AdAccountType]
    user_errors: list[UserErrorType]


@strawberry.type
class SyncAdsPayload:
    job: JobType | None
    user_errors: list[UserErrorType]


@strawberry.type
class AdSpendCapPayload:
    ad_spend_caps: list[AdSpendCapType]
    user_errors: list[UserErrorType]


async def _job(info: Info, job_id: str) -> JobType | None:
    """The job an ads write or sync just ran: the caller sees it with its ads scope, no ``jobs:read`` needed."""
    organization_id = info.context.principal.organization_id
    return await read_one(info, lambda session: queue.find_job(session, organization_id, job_id), JobType.from_row)


async def _require_write(info: Info, operation: str, scopes: list[str]) -> str:
    """Every scope the write needs, or FORBIDDEN (recorded as ``ads.write.denied``)."""
    principal = info.context.principal
    for scope in scopes:
        if not has_scope(principal.scopes, scope):
            await writes.record_scope_denied(info.context.runtime, principal.organization_id, operation, scope)
            raise Forbidden(f"This API key lacks the {scope!r} scope.")
    return principal.organization_id


def _scopes(base: str, *money: Any) -> list[str]:
    return [base] + (["ads:write:budgets"] if any(m is not None for m in money) else [])


async def _write(info: Info, write_of: Any, operation: str, scopes: list[str], key: str | None, request: Any, level: str) -> tuple[Any, Any, list[UserErrorType]]:
    organization_id = await _require_write(info, operation, scopes)

    async def run() -> writes.WriteOutcome:
        return await writes.execute(info.context.runtime, organization_id, write_of(), key, request)

    outcome, errors = await collect_user_errors(run())
    if outcome is None:
        return None, None, errors
    errors = [UserErrorType.from_error(e) for e in outcome.errors]
    job = await _job(info, outcome.job_id)
    obj = await _load_object(info, outcome.object_id, level) if outcome.object_id else None
    return job, obj, errors


def _request(input: Any) -> dict[str, Any]:
    """The input as the idempotency fingerprint sees it (the key itself excluded)."""
    return {k: v for k, v in strawberry.asdict(input).items() if k != "idempotency_key"}


def _platform_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError("PLATFORM_FIELDS_INVALID", "platformFields is an object of field name → value.", ["input", "platformFields"])
    return value


def _changes(input: UpdateAdObjectInput) -> AdChanges:
    return AdChanges(name=input.name, daily_budget=_money(input.daily_budget, "dailyBudget"), bid=_money(input.bid, "bid"),
                     starts_at=input.starts_at, ends_at=input.ends_at)


def _create(operation: str, level: str, target: Any, input: Any, **spec: Any) -> Any:
    def make() -> writes.AdWrite:
        return writes.AdWrite(operation, "create", level, str(target), spec=AdSpec(
            level, input.name, status=input.status.value, platform_fields=_platform_fields(input.platform_fields), **{k: v() for k, v in spec.items()}))  # type: ignore[arg-type]
    return make


def _update(operation: str, level: str, input: UpdateAdObjectInput) -> Any:
    return lambda: writes.AdWrite(operation, "update", level, str(input.id), changes=_changes(input))  # type: ignore[arg-type]


def _status(operation: str, level: str, input: SetAdStatusInput) -> Any:
    return lambda: writes.AdWrite(operation, "status", level, str(input.id), status=input.status.value)  # type: ignore[arg-type]


@strawberry.type
class AdsMutation:
    @strawberry.mutation(name="connectAdAccounts", description="Record the ad accounts a connected account reaches (ads.account.connected for each new one).")
    async def connect_ad_accounts(self, info: Info, input: AccountRefInput) -> ConnectAdAccountsPayload:
        principal = info.context.require("accounts:write")

        async def run() -> list[AdAccountRow]:
            try:
                return await ad_accounts.connect_ad_accounts(info.context.runtime, principal.organization_id, str(input.account_id))
            except ProviderError as error:
                raise writes.user_error_of(error, "The platform") from None

        rows, errors = await collect_user_errors(run())
        return ConnectAdAccountsPayload(ad_accounts=[AdAccountType.from_row(r) for r in rows or []], user_errors=errors)

    @strawberry.mutation(name="createAdCampaign", description="Create a campaign on the platform, as a job; stored once the platform accepted it.")
    async def create_ad_campaign(self, info: Info, input: CreateAdCampaignInput) -> AdCampaignPayload:
        make = _create("createAdCampaign", "campaign", input.ad_account_id, input, objective=lambda: input.objective,
                       daily_budget=lambda: _money(input.daily_budget, "dailyBudget"), starts_at=lambda: input.starts_at, ends_at=lambda: input.ends_at)
        job, obj, errors = await _write(info, make, "createAdCampaign", _scopes("ads:write:campaigns", input.daily_budget),
                                        input.idempotency_key, _request(input), "campaign")
        return AdCampaignPayload(job=job, ad_campaign=obj, user_errors=errors)

    @strawberry.mutation(name="updateAdCampaign")
    async def update_ad_campaign(self, info: Info, input: UpdateAdObjectInput) -> AdCampaignPayload:
        job, obj, errors = await _write(info, _update("updateAdCampaign", "campaign", input), "updateAdCampaign",
                                        _scopes("ads:write:campaigns", input.daily_budget, input.bid), input.idempotency_key, _request(input), "campaign")
        return AdCampaignPayload(job=job, ad_campaign=obj, user_errors=errors)

    @strawberry.mutation(name="setAdCampaignStatus", description="Activate, pause, archive or delete.")
    async def set_ad_campaign_status(self, info: Info, input: SetAdStatusInput) -> AdCampaignPayload:
        job, obj, errors = await _write(info, _status("setAdCampaignStatus", "campaign", input), "setAdCampaignStatus",
                                        ["ads:write:lifecycle"], input.idempotency_key, _request(input), "campaign")
        return AdCampaignPayload(job=job, ad_campaign=obj, user_errors=errors)

    @strawberry.mutation(name="createAdSet")
    async def create_ad_set(self, info: Info, input: CreateAdSetInput) -> AdSetPayload:
        make = _create("createAdSet", "ad_set", input.campaign_id, input, daily_budget=lambda: _money(input.daily_budget, "dailyBudget"),
                       bid=lambda: _money(input.bid, "bid"), starts_at=lambda: input.starts_at, ends_at=lambda: input.ends_at)
        job, obj, errors = await _write(info, make, "createAdSet", _scopes("ads:write:campaigns", input.daily_budget, input.bid),
                                        input.idempotency_key, _request(input), "ad_set")
        return AdSetPayload(job=job, ad_set=obj, user_errors=errors)

    @strawberry.mutation(name="updateAdSet")
    async def update_ad_set(self, info: Info, input: UpdateAdObjectInput) -> AdSetPayload:
        job, obj, errors = await _write(info, _update("updateAdSet", "ad_set", input), "updateAdSet",
                                        _scopes("ads:write:campaigns", input.daily_budget, input.bid), input.idempotency_key, _request(input), "ad_set")
        return AdSetPayload(job=job, ad_set=obj, user_errors=errors)

    @strawberry.mutation(name="setAdSetStatus")
    async def set_ad_set_status(self, info: Info, input: SetAdStatusInput) -> AdSetPayload:
        job, obj, errors = await _write(info, _status("setAdSetStatus", "ad_set", input), "setAdSetStatus",
                                        ["ads:write:lifecycle"], input.idempotency_key, _request(input), "ad_set")
        return AdSetPayload(job=job, ad_set=obj, user_errors=errors)

    @strawberry.mutation(name="createAd")
    async def create_ad(self, info: Info, input: CreateAdInput) -> AdPayload:
        make = _create("createAd", "ad", input.ad_set_id, input, creative_id=lambda: input.creative_id)
        job, obj, errors = await _write(info, make, "createAd", ["ads:write:creative"], input.idempotency_key, _request(input), "ad")
        return AdPayload(job=job, ad=obj, user_errors=errors)

    @strawberry.mutation(name="updateAd")
    async def update_ad(self, info: Info, input: UpdateAdObjectInput) -> AdPayload:
        job, obj, errors = await _write(info, _update("updateAd", "ad", input), "updateAd",
                                        _scopes("ads:write:creative", input.daily_budget, input.bid), input.idempotency_key, _request(input), "ad")
        return AdPayload(job=job, ad=obj, user_errors=errors)

    @strawberry.mutation(name="setAdStatus")
    async def set_ad_status(self, info: Info, input: SetAdStatusInput) -> AdPayload:
        job, obj, errors = await _write(info, _status("setAdStatus", "ad", input), "setAdStatus",
                                        ["ads:write:lifecycle"], input.idempotency_key, _request(input), "ad")
        return AdPayload(job=job, ad=obj, user_errors=errors)

    @strawberry.mutation(name="syncAds", description="Pull the ad account's objects and last week's insights; drift is recorded, not overwritten.")
    async def sync_ads(self, info: Info, input: AdAccountRefInput) -> SyncAdsPayload:
        principal = info.context.require("ads:read")
        job, errors = await collect_user_errors(sync_ad_account(info.context.runtime, principal.organization_id, str(input.ad_account_id)))
        return SyncAdsPayload(job=await _job(info, job.id) if job else None, user_errors=errors)

    @strawberry.mutation(name="setAdSpendCap", description="Cap the daily budgets the organization runs in this currency (needs org:admin).")
    async def set_ad_spend_cap(self, info: Info, input: SetAdSpendCapInput) -> AdSpendCapPayload:
        principal = info.context.require("org:admin")

        async def run() -> list[AdSpendCapRow]:
            cap = money_input(input.daily_cap.amount_minor, input.daily_cap.currency, ["input", "dailyCap"])
            async with info.context.runtime.database.write() as session:
                await caps.set_cap(session, principal.organization_id, cap)
                return await caps.list_caps(session, principal.organization_id)

        rows, errors = await collect_user_errors(run())
        return AdSpendCapPayload(ad_spend_caps=[AdSpendCapType.from_row(r) for r in rows or []], user_errors=errors)

    @strawberry.mutation(name="removeAdSpendCap")
    async def remove_ad_spend_cap(self, info: Info, input: RemoveAdSpendCapInput) -> AdSpendCapPayload:
        principal = info.context.require("org:admin")
        async with info.context.runtime.database.write() as session:
            await caps.remove_cap(session, principal.organization_id, input.currency)
            rows = await caps.list_caps(session, principal.organization_id)
        return AdSpendCapPayload(ad_spend_caps=[AdSpendCapType.from_row(r) for r in rows], user_errors=[])
