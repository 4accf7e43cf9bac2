"""TikTok ads (Business API v1.3): advertisers, campaigns, ad groups and ads, read and changed.

- Connected through TikTok's business authorization: the callback brings the code (as
  ``auth_code``, and as ``code`` for OAuth clients, per TikTok's docs; unverified here) that
  ``POST /oauth2/access_token/`` trades (with the app id and secret, as JSON) for a long-lived
  access token and the ``advertiser_ids`` it may act on. Calls carry it as ``Access-Token``.
- Money: ``budget`` and ``bid_price`` are decimal numbers in major units (50 = 50.00). They are
  written as exact JSON numbers and read back as Decimals (``providers.money``), never floats.
- Every answer is HTTP 200 with ``{code, message, request_id, data}``: 0 is success; 40001,
  40004, 40104 and 40105 mean the token is invalid, expired or lacks the advertiser; 40100 is the rate limit; 5xxxx
  are TikTok's own failures; 20001 is a partial success, treated as a refusal; anything else is a
  refusal named ``TIKTOK_{code}``.
- Ids are int64 JSON numbers: read exactly and kept as strings.
- Status: ``operation_status`` ENABLE/DISABLE (ours: active/paused), ``DELETE`` is final; TikTok
  has no archive. The delivery state is ``secondary_status`` (``CAMPAIGN_STATUS_DISABLE``…).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import httpx

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
    AuthExpired,
    Capabilities,
    Money,
    OAuth2Spec,
    Provider,
    ProviderContext,
    RateLimited,
    Rejected,
    TokenSet,
    TransientError,
    hookimpl,
)
from providers.ads import merge_platform_fields
from providers.http import raise_for_response, send
from providers.money import json_body, parse_json

API = "https://business-api.tiktok.com/open_api/v1.3"
AUTHORIZE_URL = "https://business-api.tiktok.com/portal/auth"
TOKEN_URL = f"{API}/oauth2/access_token/"
PATHS: dict[str, str] = {"campaign": "campaign", "ad_set": "adgroup", "ad": "ad"}
ID_FIELD: dict[str, str] = {"campaign": "campaign_id", "ad_set": "adgroup_id", "ad": "ad_id"}
NAME_FIELD: dict[str, str] = {"campaign": "campaign_name", "ad_set": "adgroup_name", "ad": "ad_name"}
PARENT_FIELD: dict[str, str] = {"ad_set": "campaign_id", "ad": "adgroup_id"}
DATA_LEVEL: dict[str, str] = {"campaign": "AUCTION_CAMPAIGN", "ad_set": "AUCTION_ADGROUP", "ad": "AUCTION_AD"}
OPERATION: dict[str, str] = {"active": "ENABLE", "paused": "DISABLE", "deleted": "DELETE"}
MONEY_FIELDS = frozenset({"budget", "bid_price", "conversion_bid_price", "deep_cpa_bid", "roas_bid", "budget_mode"})
AUTH_CODES = {40001, 40004, 40104, 40105}
RATE_LIMIT_CODE = 40100
PAGE_SIZE = 100
MAX_PAGES = 50
REPORT_DAYS = 30  # daily reports cover at most 30 days a request
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TikTokBusinessAuth(OAuth2Spec):
    """TikTok's portal names the app ``app_id`` where OAuth says ``client_id``."""

    def authorization_url(self, *, client_id: str, redirect_uri: str, state: str, code_challenge: str | None = None) -> str:
        return super().authorization_url(client_id=client_id, redirect_uri=redirect_uri, state=state, code_challenge=code_challenge) + f"&app_id={client_id}"


def _check(response: httpx.Response) -> Any:
    """``data`` of a TikTok answer, or the typed error its ``code`` stands for."""
    raise_for_response(response)  # a proxy's 5xx or a 429 before TikTok's own envelope
    body = parse_json(response.content)
    code, message = body.get("code"), str(body.get("message") or "")[:500]
    if code == 0:
        return body.get("data") or {}
    word = f"TIKTOK_{code}"
    if code in AUTH_CODES:
        raise AuthExpired(message, code=word, http_status=200, raw=body)
    if code == RATE_LIMIT_CODE:
        raise RateLimited(None, message, code=word, http_status=200, raw=body)
    if isinstance(code, int) and 50000 <= code < 60000:
        raise TransientError(message, code=word, http_status=200, raw=body)
    raise Rejected(word, message, http_status=200, raw=body)


def _major(money: Money | None, account: AdAccountRef) -> Any:
    if money is None:
        return None
    if money.currency != account.currency:
        raise Rejected("CURRENCY_MISMATCH", f"this advertiser counts money in {account.currency}, not {money.currency}")
    return money.to_major()


def _money(value: Any, account: AdAccountRef) -> Money | None:
    return None if value in (None, "") else Money.from_major(value if not isinstance(value, int) else str(value), account.currency)


def _time(value: Any) -> datetime | None:
    return datetime.strptime(value, TIME_FORMAT) if isinstance(value, str) and value else None


class TikTokAdsAdapter:
    async def _call(self, ctx: ProviderContext, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                    writes: bool = False) -> Any:
        headers = {"Access-Token": ctx.credential("access_token") or ""}
        kwargs: dict[str, Any] = {"params": params} if params else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kwargs["content"] = json_body(body)
        return _check(await send(ctx, method, f"{API}/{path}", headers=headers, publishes=writes, **kwargs))

    async def _get(self, ctx: ProviderContext, account: AdAccountRef, level: str, filtering: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"advertiser_id": account.external_id, "filtering": json.dumps(filtering), "page": page, "page_size": PAGE_SIZE}
            data = await self._call(ctx, "GET", f"{PATHS[level]}/get/", params=params)
            rows += data.get("list") or []
            if page >= int((data.get("page_info") or {}).get("total_page") or 1):
                break
        return rows

    async def list_ad_accounts(self, ctx: ProviderContext) -> list[AdAccountInfo]:
        ids = [i for i in (ctx.credential("advertiser_ids") or "").split(",") if i]
        if not ids:
            return []
        params = {"advertiser_ids": json.dumps(ids), "fields": json.dumps(["advertiser_id", "name", "currency", "timezone"])}
        data = await self._call(ctx, "GET", "advertiser/info/", params=params)
        return [AdAccountInfo(str(a["advertiser_id"]), a.get("name") or str(a["advertiser_id"]), a["currency"], a.get("timezone")) for a in data.get("list") or []]

    async def list_objects(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, parent_id: str | None = None) -> list[AdObject]:
        filtering = {f"{PARENT_FIELD[level].removesuffix('_id')}_ids": [parent_id]} if parent_id else {}
        return [self._object(level, row, account) for row in await self._get(ctx, account, level, filtering)]

    async def get_object(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str) -> AdObject:
        rows = await self._get(ctx, account, level, {f"{ID_FIELD[level]}s": [external_id]})
        if not rows:
            raise Rejected("NOT_FOUND", f"TikTok has no {level} {external_id[:40]} in advertiser {account.external_id}")
        return self._object(level, rows[0], account)

    async def create_object(self, ctx: ProviderContext, account: AdAccountRef, spec: AdSpec) -> AdObject:
        body: dict[str, Any] = {"advertiser_id": account.external_id, "operation_status": OPERATION.get(spec.status, "DISABLE")}
        if spec.level == "ad":
            body.update(adgroup_id=spec.parent_id, creatives=[{"ad_name": spec.name, "tiktok_item_id": spec.creative_id}])
        else:
            body[NAME_FIELD[spec.level]] = spec.name
            if spec.level == "campaign":
                body["objective_type"] = spec.objective or "TRAFFIC"
            else:
                body["campaign_id"] = spec.parent_id
        body.update(self._money_and_schedule(spec.level, account, spec.daily_budget, spec.bid, spec.starts_at, spec.ends_at))
        body = merge_platform_fields(body, spec, MONEY_FIELDS)
        data = await self._call(ctx, "POST", f"{PATHS[spec.level]}/create/", body=body, writes=True)
        created = data["ad_ids"][0] if spec.level == "ad" else data[ID_FIELD[spec.level]]
        return await self.get_object(ctx, account, spec.level, str(created))

    async def update_object(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, changes: AdChanges
    ) -> AdObject:
        body: dict[str, Any] = {"advertiser_id": account.external_id}
        if level == "ad":
            current = await self.get_object(ctx, account, level, external_id)
            body.update(adgroup_id=current.parent_id, creatives=[{"ad_id": external_id, "ad_name": changes.name or current.name}])
        else:
            body[ID_FIELD[level]] = external_id
            if changes.name is not None:
                body[NAME_FIELD[level]] = changes.name
        body.update(self._money_and_schedule(level, account, changes.daily_budget, changes.bid, changes.starts_at, changes.ends_at))
        await self._call(ctx, "POST", f"{PATHS[level]}/update/", body=body, writes=True)
        return await self.get_object(ctx, account, level, external_id)

    async def set_status(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, status: AdStatus
    ) -> AdObject:
        if status not in OPERATION:
            raise Rejected("STATUS_NOT_SUPPORTED", "TikTok has no archive: pause the object or delete it")
        body = {"advertiser_id": account.external_id, f"{ID_FIELD[level]}s": [external_id], "operation_status": OPERATION[status]}
        await self._call(ctx, "POST", f"{PATHS[level]}/status/update/", body=body, writes=True)
        if status == "deleted":  # a deleted object is no longer listed
            return AdObject(level, external_id, "", "deleted", effective_status="DELETE")
        return await self.get_object(ctx, account, level, external_id)

    async def fetch_insights(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, start: date, end: date
    ) -> list[AdInsight]:
        found: list[AdInsight] = []
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + timedelta(days=REPORT_DAYS - 1))
            params = {
                "advertiser_id": account.external_id, "report_type": "BASIC", "data_level": DATA_LEVEL[level],
                "dimensions": json.dumps([ID_FIELD[level], "stat_time_day"]),
                "metrics": json.dumps(["spend", "impressions", "clicks", "reach", "conversion"]),
                "start_date": chunk_start.isoformat(), "end_date": chunk_end.isoformat(),
                "filtering": json.dumps([{"field_name": f"{ID_FIELD[level]}s", "filter_type": "IN", "filter_value": json.dumps([external_id])}]),
                "page": 1, "page_size": 1000,
            }
            data = await self._call(ctx, "GET", "report/integrated/get/", params=params)
            for row in data.get("list") or []:
                metrics = row.get("metrics") or {}
                day = datetime.strptime(row["dimensions"]["stat_time_day"], TIME_FORMAT).date()
                found.append(AdInsight(
                    level, external_id, day, impressions=_count(metrics.get("impressions")), clicks=_count(metrics.get("clicks")),
                    spend=_money(metrics.get("spend"), account), reach=_count(metrics.get("reach")), conversions=_count(metrics.get("conversion")),
                ))
            chunk_start = chunk_end + timedelta(days=1)
        return sorted(found, key=lambda i: i.day)

    def _money_and_schedule(self, level: str, account: AdAccountRef, budget: Money | None, bid: Money | None,
                            starts_at: datetime | None, ends_at: datetime | None) -> dict[str, Any]:
        if level == "ad" and (budget or bid or starts_at or ends_at):
            raise Rejected("FIELD_NOT_SUPPORTED", "a TikTok ad has no budget, bid or schedule of its own; set them on its ad group")
        values: dict[str, Any] = {}
        if budget is not None:
            values.update(budget_mode="BUDGET_MODE_DAY", budget=_major(budget, account))
        if bid is not None:
            if level == "campaign":
                raise Rejected("FIELD_NOT_SUPPORTED", "TikTok bids are set on ad groups, not campaigns")
            values["bid_price"] = _major(bid, account)
        if starts_at is not None or ends_at is not None:
            if level == "campaign":
                raise Rejected("FIELD_NOT_SUPPORTED", "TikTok schedules ad groups, not campaigns")
            values["schedule_type"] = "SCHEDULE_START_END" if ends_at else "SCHEDULE_FROM_NOW"
            if starts_at is not None:
                values["schedule_start_time"] = starts_at.strftime(TIME_FORMAT)
            if ends_at is not None:
                values["schedule_end_time"] = ends_at.strftime(TIME_FORMAT)
        return values

    def _object(self, level: AdLevel, row: dict[str, Any], account: AdAccountRef) -> AdObject:
        operation = row.get("operation_status")
        secondary = row.get("secondary_status")
        status: AdStatus = "deleted" if secondary and "DELETE" in str(secondary) else "active" if operation == "ENABLE" else "paused"
        parent = PARENT_FIELD.get(level)
        budget = row.get("budget") if row.get("budget_mode") not in (None, "BUDGET_MODE_INFINITE") else None
        return AdObject(
            level=level, external_id=str(row[ID_FIELD[level]]), name=row.get(NAME_FIELD[level], ""), status=status,
            effective_status=secondary, parent_id=str(row[parent]) if parent and row.get(parent) else None,
            objective=row.get("objective_type"), daily_budget=_money(budget, account), bid=_money(row.get("bid_price") or None, account),
            starts_at=_time(row.get("schedule_start_time")), ends_at=_time(row.get("schedule_end_time")), raw=row,
        )


def _count(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


class TikTokAds(Provider):
    id = "tiktok_ads"
    name = "TikTok ads"
    approval = "TikTok For Business must approve the developer app for the Marketing API, and each advertiser's owner authorises it for their ad accounts."
    description = "TikTok ads through the Business API v1.3: advertisers authorized through TikTok's business portal."
    capabilities = Capabilities(publish=False, ads=True)
    auth = TikTokBusinessAuth(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, refreshable=False)
    ads = TikTokAdsAdapter()

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        response = await send(ctx, "POST", TOKEN_URL, content=json_body({"app_id": client_id, "secret": client_secret, "auth_code": code}),
                              headers={"Content-Type": "application/json"})
        try:
            data = _check(response)
        except AuthExpired as refused:  # a refused code is the caller's to fix, not an expiry
            raise Rejected(refused.code, refused.message) from None
        advertisers = ",".join(str(i) for i in data.get("advertiser_ids") or [])
        return TokenSet(access_token=data["access_token"], scopes=tuple(str(s) for s in data.get("scope") or ()), extra={"advertiser_ids": advertisers})

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        response = await send(ctx, "GET", f"{API}/user/info/", headers={"Access-Token": credentials.get("access_token", "")})
        me = _check(response)
        return AccountProfile(external_id=str(me["core_user_id"]), handle=me.get("display_name") or str(me["core_user_id"]),
                              display_name=me.get("display_name", ""), raw=me)


@hookimpl
def register_providers() -> list[Provider]:
    return [TikTokAds()]
