"""Meta ads (Marketing API): ``act_…`` ad accounts, campaigns, ad sets and ads, read and changed.

- Connected through Facebook Login (OAuth, scopes ``ads_management`` and ``ads_read``); one
  connected identity reaches every ad account its user may act on (``GET /me/adaccounts``).
- Money: budgets and bids are integers in the account currency's *minimum denomination* and come
  back as strings (``"2000"`` = 20.00 USD). Meta's offset is 100 for most currencies but 1 for
  the currencies it counts in whole units (JPY, KRW, IDR, HUF, TWD…): ``OFFSET_ONE``. An amount
  that is not a whole number of Meta's units (1.50 IDR, 12.345 KWD) is refused, never rounded.
  Insights ``spend`` is a major-unit decimal string (``"5339.5"``).
- Writes are form posts; a create answers ``{"id"}`` and an update ``{"success": true}``, so the
  object is read back afterwards: what we return is what Meta stored.
- Errors: the Graph API's error body, mapped once for every Meta plugin in ``plugins.meta_graph``
  (190 token, 4/17/32/613/80000–80014 rate limits, 1/2 transient, 100 with subcode 33 not found,
  the rest refusals named ``META_{code}_{subcode}``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from plugins.meta_graph import FACEBOOK_AUTHORIZE_URL, FACEBOOK_GRAPH, FACEBOOK_TOKEN_URL
from plugins.meta_graph import raise_for as _raise_for
from providers import (
    AccountProfile,
    AdAccountInfo,
    AdAccountRef,
    AdChanges,
    AdInsight,
    AdLevel,
    AdObject,
    AdSpec,
    AdStatus,
    Capabilities,
    Money,
    OAuth2Spec,
    Provider,
    ProviderContext,
    Rejected,
    TokenSet,
    hookimpl,
)
from providers.ads import merge_platform_fields
from providers.http import send
from providers.oauth import token_set_from

GRAPH = FACEBOOK_GRAPH
AUTHORIZE_URL = FACEBOOK_AUTHORIZE_URL
TOKEN_URL = FACEBOOK_TOKEN_URL
SCOPES = ("ads_management", "ads_read")
# Meta's currency offset: how many of its budget units make one major unit. 100 unless listed.
OFFSET_ONE = frozenset({"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"})
EDGES: dict[str, str] = {"campaign": "campaigns", "ad_set": "adsets", "ad": "ads"}
PARENT_FIELD: dict[str, str] = {"ad_set": "campaign_id", "ad": "adset_id"}
FIELDS: dict[str, str] = {
    "campaign": "id,name,status,effective_status,objective,daily_budget,start_time,stop_time",
    "ad_set": "id,name,status,effective_status,campaign_id,daily_budget,bid_amount,start_time,end_time",
    "ad": "id,name,status,effective_status,adset_id",
}
END_FIELD = {"campaign": "stop_time", "ad_set": "end_time"}
INSIGHT_FIELDS = "impressions,clicks,spend,reach,conversions"
STATUS_TO_META = {"active": "ACTIVE", "paused": "PAUSED", "archived": "ARCHIVED", "deleted": "DELETED"}
STATUS_FROM_META = {v: k for k, v in STATUS_TO_META.items()}
MONEY_FIELDS = frozenset({"daily_budget", "lifetime_budget", "bid_amount", "spend_cap", "daily_spend_cap", "lifetime_spend_cap", "bid_constraints"})
PAGE_LIMIT = 100
MAX_PAGES = 50


def offset(currency: str) -> int:
    return 1 if currency in OFFSET_ONE else 100


def _units(money: Money | None, account: AdAccountRef) -> str | None:
    if money is None:
        return None
    if money.currency != account.currency:
        raise Rejected("CURRENCY_MISMATCH", f"this ad account counts money in {account.currency}, not {money.currency}")
    return str(money.to_units(offset(money.currency)))


def _money(value: Any, account: AdAccountRef) -> Money | None:
    if value in (None, "", "0"):
        return None  # Meta reports an unset budget (the ad set's, under a campaign budget) as "0" or leaves it out
    return Money.from_units(str(value), offset(account.currency), account.currency)


def _time(value: Any) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z") if isinstance(value, str) and value else None


class MetaAdsAdapter:
    """The Marketing API calls, one table per level (``EDGES``, ``FIELDS``)."""

    async def _call(self, ctx: ProviderContext, method: str, path: str, *, writes: bool = False, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {ctx.credential('access_token')}"}
        response = await send(ctx, method, f"{GRAPH}/{path}", headers=headers, publishes=writes, **kwargs)
        _raise_for(response)
        return response.json()

    async def _pages(self, ctx: ProviderContext, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row of a cursor-paged edge (``paging.cursors.after``)."""
        rows: list[dict[str, Any]] = []
        query = dict(params, limit=PAGE_LIMIT)
        for _ in range(MAX_PAGES):
            body = await self._call(ctx, "GET", path, params=query)
            rows += body.get("data") or []
            after = ((body.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (body.get("paging") or {}).get("next"):
                break
            query["after"] = after
        return rows

    async def list_ad_accounts(self, ctx: ProviderContext) -> list[AdAccountInfo]:
        rows = await self._pages(ctx, "me/adaccounts", {"fields": "id,name,currency,timezone_name"})
        return [AdAccountInfo(r["id"], r.get("name") or r["id"], r["currency"], r.get("timezone_name")) for r in rows]

    async def list_objects(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, parent_id: str | None = None) -> list[AdObject]:
        rows = await self._pages(ctx, f"{parent_id or account.external_id}/{EDGES[level]}", {"fields": FIELDS[level]})
        return [self._object(level, row, account) for row in rows]

    async def get_object(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str) -> AdObject:
        return self._object(level, await self._call(ctx, "GET", external_id, params={"fields": FIELDS[level]}), account)

    async def create_object(self, ctx: ProviderContext, account: AdAccountRef, spec: AdSpec) -> AdObject:
        form: dict[str, Any] = {"name": spec.name, "status": STATUS_TO_META[spec.status]}
        if spec.level == "campaign":
            form.update(objective=spec.objective or "OUTCOME_TRAFFIC", special_ad_categories="[]")
        else:
            form[PARENT_FIELD[spec.level]] = spec.parent_id
        if spec.level == "ad":
            form["creative"] = json.dumps({"creative_id": spec.creative_id})
        form.update(self._money_and_schedule(spec.level, account, spec.daily_budget, spec.bid, spec.starts_at, spec.ends_at))
        form = merge_platform_fields(form, spec, MONEY_FIELDS)
        form = {k: v if isinstance(v, str) or v is None else json.dumps(v) for k, v in form.items()}
        created = await self._call(ctx, "POST", f"{account.external_id}/{EDGES[spec.level]}", data=_form(form), writes=True)
        return await self.get_object(ctx, account, spec.level, str(created["id"]))

    async def update_object(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, changes: AdChanges
    ) -> AdObject:
        form: dict[str, Any] = {"name": changes.name}
        form.update(self._money_and_schedule(level, account, changes.daily_budget, changes.bid, changes.starts_at, changes.ends_at))
        await self._call(ctx, "POST", external_id, data=_form(form), writes=True)
        return await self.get_object(ctx, account, level, external_id)

    async def set_status(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, status: AdStatus
    ) -> AdObject:
        await self._call(ctx, "POST", external_id, data={"status": STATUS_TO_META[status]}, writes=True)
        return await self.get_object(ctx, account, level, external_id)

    async def fetch_insights(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, start: date, end: date
    ) -> list[AdInsight]:
        params = {
            "fields": INSIGHT_FIELDS,
            "time_range": json.dumps({"since": start.isoformat(), "until": end.isoformat()}),
            "time_increment": "1",
        }
        rows = await self._pages(ctx, f"{external_id}/insights", params)
        return [
            AdInsight(
                level, external_id, date.fromisoformat(row["date_start"]),
                impressions=_count(row.get("impressions")), clicks=_count(row.get("clicks")),
                spend=Money.from_major(row["spend"], account.currency) if row.get("spend") is not None else None,
                reach=_count(row.get("reach")),
                conversions=sum(int(a["value"]) for a in row["conversions"]) if row.get("conversions") else None,
            )
            for row in rows
        ]

    def _money_and_schedule(self, level: str, account: AdAccountRef, budget: Money | None, bid: Money | None,
                            starts_at: datetime | None, ends_at: datetime | None) -> dict[str, Any]:
        if level == "ad" and (budget or bid or starts_at or ends_at):
            raise Rejected("FIELD_NOT_SUPPORTED", "a Meta ad has no budget, bid or schedule of its own; set them on its ad set")
        if level == "campaign" and bid is not None:
            raise Rejected("FIELD_NOT_SUPPORTED", "Meta bids are set on ad sets, not campaigns")
        values = {"daily_budget": _units(budget, account), "bid_amount": _units(bid, account)}
        if starts_at is not None:
            values["start_time"] = starts_at.isoformat()
        if ends_at is not None:
            values[END_FIELD[level]] = ends_at.isoformat()
        return values

    def _object(self, level: AdLevel, row: dict[str, Any], account: AdAccountRef) -> AdObject:
        parent = PARENT_FIELD.get(level)
        return AdObject(
            level=level, external_id=str(row["id"]), name=row.get("name", ""),
            status=STATUS_FROM_META.get(row.get("status", ""), "paused"), effective_status=row.get("effective_status"),
            parent_id=str(row[parent]) if parent and row.get(parent) else None, objective=row.get("objective"),
            daily_budget=_money(row.get("daily_budget"), account), bid=_money(row.get("bid_amount"), account),
            starts_at=_time(row.get("start_time")), ends_at=_time(row.get(END_FIELD.get(level, ""))), raw=row,
        )


def _form(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


class MetaAds(Provider):
    id = "meta_ads"
    name = "Meta ads"
    approval = "Meta App Review: Advanced Access to ads_management and ads_read, with Business Verification; the Marketing API starts at the Limited access tier (lower rate limits) until Meta grants Full access."
    description = "Facebook and Instagram ads through the Marketing API: act_ ad accounts via Facebook Login."
    capabilities = Capabilities(publish=False, ads=True)
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=SCOPES, scope_separator=",", refreshable=False)
    ads = MetaAdsAdapter()

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        params = {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri, "code": code}
        response = await send(ctx, "GET", TOKEN_URL, params=params)
        _raise_for(response)
        return token_set_from(response.json(), ctx)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        response = await send(
            ctx, "GET", f"{GRAPH}/me", params={"fields": "id,name"},
            headers={"Authorization": f"Bearer {credentials.get('access_token', '')}"},
        )
        _raise_for(response)
        me = response.json()
        return AccountProfile(external_id=str(me["id"]), handle=me.get("name") or str(me["id"]), display_name=me.get("name", ""), raw=me)


@hookimpl
def register_providers() -> list[Provider]:
    return [MetaAds()]
