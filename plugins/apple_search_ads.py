"""Apple Search Ads (Campaign Management API v5): orgs, campaigns, ad groups and ads.

- Connected with a credentials form: the API user's client id, team id, key id and the ES256
  (prime256v1) private key whose public half was uploaded to Apple. The client secret is a JWT
  the SDK signs with PyJWT (``providers.oauth.es256_client_assertion``) (``iss`` team, ``sub`` client, ``aud`` https://appleid.apple.com),
  traded at ``POST https://appleid.apple.com/auth/oauth2/token`` (``client_credentials``, scope
  ``searchadsorg``) for an hour-long access token, kept in the account's store and re-minted
  when it runs out. The private key never leaves the credentials.
- An ad account is an org (``GET /acls``); calls carry ``X-AP-Context: orgId={id}``.
- Money: ``{"amount": "12.34", "currency": "USD"}``, major units as a decimal string.
- Ids: a campaign is ``{campaignId}``; an ad group lives under its campaign, so its id here is
  ``{campaignId}/{adGroupId}``, and an ad's ``{campaignId}/{adGroupId}/{adId}``.
- Status: ``status`` ENABLED/PAUSED, delete is ``DELETE``; there is no archive. The delivery
  state is ``servingStatus`` (RUNNING / NOT_RUNNING).
- Errors: ``{"data": null, "error": {"errors": [{"messageCode", "message", "field"}]}}``; 401 is
  an expired token, 429 a rate limit, 5xx transient, other 4xx a refusal ``APPLE_{messageCode}``.
"""

from __future__ import annotations

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
    Capabilities,
    CredentialField,
    Money,
    Provider,
    ProviderContext,
    Rejected,
    hookimpl,
)
from providers.ads import merge_platform_fields
from providers.http import json_object, raise_for_response, send
from providers.oauth import es256_client_assertion

API = "https://api.searchads.apple.com/api/v5"
TOKEN_URL = "https://appleid.apple.com/auth/oauth2/token"
AUDIENCE = "https://appleid.apple.com"
ASSERTION_LIFETIME = timedelta(days=1)  # Apple allows up to 180 days; a fresh one per token is cheaper to lose
TOKEN_MARGIN = timedelta(minutes=2)
TOKENS = "token"  # ctx.store kind: "access" → the current access token and its expiry
STATUS_TO_APPLE = {"active": "ENABLED", "paused": "PAUSED"}
MONEY_FIELDS = frozenset({"dailyBudgetAmount", "budgetAmount", "defaultBidAmount", "cpaGoal", "bidAmount"})
BUDGET_FIELD = {"campaign": "dailyBudgetAmount"}
BID_FIELD = {"ad_set": "defaultBidAmount"}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
PAGE = 1000
MAX_PAGES = 20


def client_assertion(credentials: dict[str, Any], now: datetime) -> str:
    """The ES256 JWT Apple takes as the OAuth client secret (``iss`` team, ``sub`` client)."""
    return es256_client_assertion(
        issuer=credentials["team_id"], subject=credentials["client_id"], audience=AUDIENCE, key_id=credentials["key_id"],
        private_key_pem=credentials["private_key"], now=now, lifetime=ASSERTION_LIFETIME,
    )


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    errors = ((json_object(response) or {}).get("error") or {}).get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = f"APPLE_{first['messageCode']}" if first.get("messageCode") else None
    if response.status_code == 404:
        code = "NOT_FOUND"
    raise_for_response(response, code=code, message=first.get("message"))


def _money(value: Any) -> Money | None:
    return Money.from_major(str(value["amount"]), value["currency"]) if isinstance(value, dict) and value.get("amount") is not None else None


def _amount(money: Money | None, account: AdAccountRef) -> dict[str, str] | None:
    if money is None:
        return None
    if money.currency != account.currency:
        raise Rejected("CURRENCY_MISMATCH", f"this org counts money in {account.currency}, not {money.currency}")
    return {"amount": money.major_string(), "currency": money.currency}


def _time(value: Any) -> datetime | None:
    return datetime.strptime(value, TIME_FORMAT) if isinstance(value, str) and value else None


def _path(level: str, external_id: str) -> str:
    parts = external_id.split("/")
    if len(parts) != {"campaign": 1, "ad_set": 2, "ad": 3}[level] or not all(p.isdigit() for p in parts):
        raise Rejected("NOT_FOUND", f"{external_id[:60]!r} is not an Apple Search Ads {level} id")
    names = ("campaigns", "adgroups", "ads")
    return "/".join(f"{names[i]}/{part}" for i, part in enumerate(parts))


def _collection(level: str, parent_id: str | None) -> str:
    if level == "campaign":
        return "campaigns"
    return f"{_path('campaign' if level == 'ad_set' else 'ad_set', parent_id or '')}/{'adgroups' if level == 'ad_set' else 'ads'}"


class AppleSearchAdsAdapter:
    async def _token(self, ctx: ProviderContext) -> str:
        held = await ctx.store.get(TOKENS, "access")
        if held and datetime.fromisoformat(held["expires_at"]) - TOKEN_MARGIN > ctx.now():
            return str(held["access_token"])
        token, expires_at = await mint_token(ctx, dict(ctx.credentials))
        await ctx.store.put(TOKENS, "access", {"access_token": token, "expires_at": expires_at.isoformat()})
        return token

    async def _call(self, ctx: ProviderContext, method: str, path: str, org: str | None, *, writes: bool = False, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {await self._token(ctx)}"}
        if org:
            headers["X-AP-Context"] = f"orgId={org}"
        response = await send(ctx, method, f"{API}/{path}", headers=headers, publishes=writes, **kwargs)
        _raise_for(response)
        return (json_object(response) or {}).get("data") if response.content else None

    async def list_ad_accounts(self, ctx: ProviderContext) -> list[AdAccountInfo]:
        rows = await self._call(ctx, "GET", "acls", None) or []
        return [AdAccountInfo(str(r["orgId"]), r.get("orgName") or str(r["orgId"]), r["currency"], r.get("timeZone")) for r in rows]

    async def list_objects(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, parent_id: str | None = None) -> list[AdObject]:
        if level != "campaign" and parent_id is None:  # Apple lists ad groups per campaign, ads per ad group
            parents = await self.list_objects(ctx, account, "campaign" if level == "ad_set" else "ad_set")
            return [o for p in parents for o in await self.list_objects(ctx, account, level, p.external_id)]
        rows: list[dict[str, Any]] = []
        for index in range(MAX_PAGES):
            page = await self._call(ctx, "GET", _collection(level, parent_id), account.external_id, params={"limit": PAGE, "offset": index * PAGE}) or []
            rows += page
            if len(page) < PAGE:
                break
        return [self._object(level, row) for row in rows]

    async def get_object(self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str) -> AdObject:
        return self._object(level, await self._call(ctx, "GET", _path(level, external_id), account.external_id))

    async def create_object(self, ctx: ProviderContext, account: AdAccountRef, spec: AdSpec) -> AdObject:
        body: dict[str, Any] = {"name": spec.name, "status": STATUS_TO_APPLE.get(spec.status, "PAUSED")}
        if spec.level == "campaign":
            if spec.daily_budget is None:
                raise Rejected("BUDGET_REQUIRED", "an Apple Search Ads campaign needs a daily budget")
            body.update(supplySources=["APPSTORE_SEARCH_RESULTS"])
        elif spec.level == "ad_set":
            body.update(pricingModel="CPC", automatedKeywordsOptIn=False)
        else:
            body["creativeId"] = spec.creative_id
        body.update(self._fields(spec.level, account, spec.daily_budget, spec.bid, spec.starts_at, spec.ends_at))
        body = merge_platform_fields(body, spec, MONEY_FIELDS)
        row = await self._call(ctx, "POST", _collection(spec.level, spec.parent_id), account.external_id, json=body, writes=True)
        return self._object(spec.level, row)

    async def update_object(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, changes: AdChanges
    ) -> AdObject:
        body: dict[str, Any] = {"name": changes.name} if changes.name is not None else {}
        body.update(self._fields(level, account, changes.daily_budget, changes.bid, changes.starts_at, changes.ends_at))
        return await self._put(ctx, account, level, external_id, body)

    async def set_status(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, status: AdStatus
    ) -> AdObject:
        if status == "deleted":
            await self._call(ctx, "DELETE", _path(level, external_id), account.external_id, writes=True)
            return AdObject(level, external_id, "", "deleted", effective_status="DELETED")
        if status not in STATUS_TO_APPLE:
            raise Rejected("STATUS_NOT_SUPPORTED", "Apple Search Ads has no archive: pause the object or delete it")
        return await self._put(ctx, account, level, external_id, {"status": STATUS_TO_APPLE[status]})

    async def fetch_insights(
        self, ctx: ProviderContext, account: AdAccountRef, level: AdLevel, external_id: str, start: date, end: date
    ) -> list[AdInsight]:
        _path(level, external_id)  # refuses an id of the wrong shape
        parts = external_id.split("/")
        report = {"campaign": "reports/campaigns", "ad_set": f"reports/campaigns/{parts[0]}/adgroups", "ad": f"reports/campaigns/{parts[0]}/ads"}[level]
        field = {"campaign": "campaignId", "ad_set": "adGroupId", "ad": "adId"}[level]
        body = {
            "startTime": start.isoformat(), "endTime": end.isoformat(), "granularity": "DAILY", "timeZone": "UTC",
            "selector": {"orderBy": [{"field": field, "sortOrder": "ASCENDING"}],
                         "conditions": [{"field": field, "operator": "EQUALS", "values": [parts[-1]]}], "pagination": {"offset": 0, "limit": 1000}},
            "returnRowTotals": False, "returnGrandTotals": False, "returnRecordsWithNoMetrics": False,
        }
        data = await self._call(ctx, "POST", report, account.external_id, json=body) or {}
        rows = (data.get("reportingDataResponse") or {}).get("row") or []
        return [
            AdInsight(level, external_id, date.fromisoformat(day["date"]), impressions=day.get("impressions"), clicks=day.get("taps"),
                      spend=_money(day.get("localSpend")), reach=None, conversions=day.get("totalInstalls"))
            for row in rows for day in row.get("granularity") or []
        ]

    async def _put(self, ctx: ProviderContext, account: AdAccountRef, level: str, external_id: str, fields: dict[str, Any]) -> AdObject:
        body = {"campaign": fields} if level == "campaign" else fields  # a campaign update is wrapped, the others are not
        return self._object(level, await self._call(ctx, "PUT", _path(level, external_id), account.external_id, json=body, writes=True))  # type: ignore[arg-type]

    def _fields(self, level: str, account: AdAccountRef, budget: Money | None, bid: Money | None,
                starts_at: datetime | None, ends_at: datetime | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if budget is not None:
            if level not in BUDGET_FIELD:
                raise Rejected("FIELD_NOT_SUPPORTED", "Apple Search Ads budgets belong to campaigns")
            values[BUDGET_FIELD[level]] = _amount(budget, account)
        if bid is not None:
            if level not in BID_FIELD:
                raise Rejected("FIELD_NOT_SUPPORTED", "Apple Search Ads default bids belong to ad groups")
            values[BID_FIELD[level]] = _amount(bid, account)
        if starts_at is not None:
            values["startTime"] = starts_at.strftime(TIME_FORMAT)[:-3]
        if ends_at is not None:
            values["endTime"] = ends_at.strftime(TIME_FORMAT)[:-3]
        return values

    def _object(self, level: AdLevel, row: dict[str, Any]) -> AdObject:
        ids = {"campaign": [row.get("id")], "ad_set": [row.get("campaignId"), row.get("id")],
               "ad": [row.get("campaignId"), row.get("adGroupId"), row.get("id")]}[level]
        external_id = "/".join(str(i) for i in ids)
        status: AdStatus = "deleted" if row.get("deleted") else "active" if row.get("status") == "ENABLED" else "paused"
        return AdObject(
            level=level, external_id=external_id, name=row.get("name", ""), status=status, effective_status=row.get("servingStatus"),
            parent_id=external_id.rsplit("/", 1)[0] if "/" in external_id else None, objective=None,
            daily_budget=_money(row.get("dailyBudgetAmount")), bid=_money(row.get("defaultBidAmount")),
            starts_at=_time(row.get("startTime")), ends_at=_time(row.get("endTime")), raw=row,
        )


async def mint_token(ctx: ProviderContext, credentials: dict[str, Any]) -> tuple[str, datetime]:
    """Trade a freshly signed client assertion for an access token (and when it expires)."""
    assertion = client_assertion(credentials, ctx.now())
    form = {"grant_type": "client_credentials", "client_id": credentials["client_id"], "client_secret": assertion, "scope": "searchadsorg"}
    response = await send(ctx, "POST", TOKEN_URL, data=form, headers={"Accept": "application/json"})
    if response.status_code == 400:  # invalid_client: a wrong key, client or team is a refusal of these credentials
        error = (json_object(response) or {}).get("error") or "invalid_request"
        raise Rejected(f"APPLE_{str(error).upper()}", f"Apple refused the client credentials ({error})", http_status=400)
    raise_for_response(response)
    body = json_object(response) or {}
    return str(body["access_token"]), ctx.now() + timedelta(seconds=int(body.get("expires_in") or 3600))


class AppleSearchAds(Provider):
    id = "apple_search_ads"
    name = "Apple Search Ads"
    approval = "None from Apple (no app review): an Apple Ads account administrator invites the API user with an API role, and the public key of the client secret is uploaded under Account Settings → API."
    description = "Apple Search Ads through the Campaign Management API v5: an API user's client credentials."
    capabilities = Capabilities(publish=False, ads=True)
    auth = (
        CredentialField("client_id", "Client ID", pattern=r"SEARCHADS\.[A-Za-z0-9-]{8,64}", help="SEARCHADS.… from the API user's settings."),
        CredentialField("team_id", "Team ID", pattern=r"SEARCHADS\.[A-Za-z0-9-]{8,64}"),
        CredentialField("key_id", "Key ID", pattern=r"[A-Za-z0-9-]{8,64}"),
        CredentialField("private_key", "Private key (PEM)", secret=True, kind="secret", help="The ES256 key whose public half you uploaded to Apple."),
    )
    ads = AppleSearchAdsAdapter()

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        token, _ = await mint_token(ctx, credentials)  # not kept: the account does not exist yet
        response = await send(ctx, "GET", f"{API}/acls", headers={"Authorization": f"Bearer {token}"})
        _raise_for(response)
        orgs = (json_object(response) or {}).get("data") or []
        name = orgs[0].get("orgName") if orgs else credentials["client_id"]
        return AccountProfile(external_id=credentials["client_id"], handle=str(name), display_name=str(name), account_type="organization")


@hookimpl
def register_providers() -> list[Provider]:
    return [AppleSearchAds()]
