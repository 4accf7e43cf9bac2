"""Google Business Profile: a business location's posts (``localPosts``) and its performance.

Each connected account is one **location**. Google's consent grants the user's whole Business
Profile; the code exchange lists the user's accounts (``GET mybusinessaccountmanagement/v1/accounts``)
and their locations (``GET mybusinessbusinessinformation/v1/{account}/locations``) and records the
first one (``location``, ``business_account``, ``location_title`` credentials), which refreshes
keep. Credentials that already name a ``location`` keep it; ``connect`` checks the user manages it.

Google must grant the project **Business Profile API access** first (the quota is 0 until the
"Basic API Access" request is approved), which ``approval`` says.

A post: ``POST mybusiness/v4/{account}/{location}/localPosts {languageCode, summary, topicType,
callToAction, event, offer, media}``. ``topicType`` STANDARD, EVENT (needs ``event``: a title and
a schedule) or OFFER (an event plus ``offer``: coupon code, redeem URL, terms; Google ignores a
call-to-action on an offer, so validation refuses one). One photo, which Google fetches from the
media's public URL. The answer's ``state`` may be ``REJECTED`` (a policy refusal: ``Rejected``),
``PROCESSING`` or ``LIVE``; the public link is ``searchUrl``.

Limits: the summary is at most 1,500 characters; **10 edits a minute per profile**, which Google
does not raise, declared as a ``Quota`` so the gateway holds posts back instead of earning a
429 ``RESOURCE_EXHAUSTED``. Errors are ``{"error": {"code", "message", "status"}}``.

Metrics: Google reports none per post. The location's performance comes from
``businessprofileperformance/v1/{location}:fetchMultiDailyMetricsTimeSeries`` (the last 28 full
days, summed per metric into ``extra``); the account's ``posts`` figure is the number of its
local posts, counted from the listing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from providers import (
    AccountMetricSnapshot,
    AccountProfile,
    Capabilities,
    Issue,
    Limits,
    MetricsSpec,
    OAuth2Spec,
    PostDraft,
    Provider,
    ProviderContext,
    PublishRequest,
    PublishResult,
    Quota,
    Rejected,
    SettingField,
    TokenSet,
    Unconfirmed,
    hookimpl,
    reported,
)
from providers.http import bearer, json_object, raise_for_response, send
from providers.oauth import code_form, refresh_tokens, request_tokens, with_extra

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/business.manage"
ACCOUNTS_URL = "https://mybusinessaccountmanagement.googleapis.com/v1/accounts"
LOCATIONS_URL = "https://mybusinessbusinessinformation.googleapis.com/v1/{account}/locations"
POSTS_API = "https://mybusiness.googleapis.com/v4"
PERFORMANCE_URL = "https://businessprofileperformance.googleapis.com/v1/{location}:fetchMultiDailyMetricsTimeSeries"

MAX_SUMMARY = 1500
TOPICS = ("STANDARD", "EVENT", "OFFER")
ACTIONS = ("BOOK", "ORDER", "SHOP", "LEARN_MORE", "SIGN_UP", "CALL")
# Performance metrics read for the location, and the ``extra`` figure each adds to.
DAILY_METRICS = {
    "WEBSITE_CLICKS": "website_clicks",
    "CALL_CLICKS": "call_clicks",
    "BUSINESS_DIRECTION_REQUESTS": "direction_requests",
    "BUSINESS_CONVERSATIONS": "conversations",
    "BUSINESS_IMPRESSIONS_DESKTOP_MAPS": "impressions_maps",
    "BUSINESS_IMPRESSIONS_MOBILE_MAPS": "impressions_maps",
    "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH": "impressions_search",
    "BUSINESS_IMPRESSIONS_MOBILE_SEARCH": "impressions_search",
}
PERFORMANCE_DAYS = 28
MAX_POST_PAGES = 20  # 100 posts a page; a location with more leaves the posts figure unknown
RECONCILE_WINDOW = timedelta(days=1)  # a lost publish is looked for among posts created this recently
LOCATION_CREDENTIALS = ("business_account", "location", "location_title")  # which location the account is, kept across refreshes
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def raise_for_google(response: httpx.Response) -> None:
    """Map ``{"error": {"code", "message", "status", "details"}}`` to the SDK's errors.

    429 ``RESOURCE_EXHAUSTED`` waits for the ``RetryInfo`` detail's ``retryDelay`` when Google
    gives one, else the Retry-After header.
    """
    if response.is_success:
        return
    error = (json_object(response) or {}).get("error") or {}
    wait = None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            if match := _RETRY_DELAY.match(str(detail.get("retryDelay", ""))):
                wait = float(match.group(1))
    status = error.get("status")
    raise_for_response(response, code=str(status) if status else None, message=error.get("message"), retry_after=wait)


def _date(value: str) -> date | datetime:
    return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)


def _google_date(value: date) -> dict[str, int]:
    return {"year": value.year, "month": value.month, "day": value.day}


def _schedule(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``event.schedule`` from ISO dates (``2026-03-01``) or date-times (``2026-03-01T18:30``)."""
    schedule: dict[str, Any] = {}
    for side in ("start", "end"):
        moment = _date(str(settings[f"event_{side}"]))
        schedule[f"{side}Date"] = _google_date(moment)
        if isinstance(moment, datetime):
            schedule[f"{side}Time"] = {"hours": moment.hour, "minutes": moment.minute}
    return schedule


class GoogleBusinessProfile(Provider):
    id = "google_business"
    name = "Google Business Profile"
    description = "Posts updates, events and offers to a Google Business Profile location."
    approval = "Google must grant the project Business Profile API access (Basic API Access request; the quota is 0 until then)."
    capabilities = Capabilities(delete=True, metrics=True, reconcile=True)
    limits = Limits(
        max_text_length=MAX_SUMMARY,
        max_media=1,
        media_kinds=frozenset({"image"}),
        max_thread_parts=1,
        quotas=(Quota(count=10, period_seconds=60, description="10 edits a minute per profile (Google Business Profile API limits; not raisable)"),),
    )
    auth = OAuth2Spec(
        authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, scopes=(SCOPE,),
        extra_authorize_params={"access_type": "offline", "prompt": "consent"},  # a refresh token every time
    )
    metrics = MetricsSpec(account=("posts",), min_interval_seconds=86_400)  # performance is reported per day
    settings = (
        SettingField("topic", "Post type", type="choice", choices=TOPICS, default="STANDARD"),
        SettingField("language", "Language", default="en", help="The summary's language (BCP 47), e.g. en or de-CH."),
        SettingField("action", "Button", type="choice", choices=ACTIONS, help="A call-to-action button (CALL dials the listing's phone)."),
        SettingField("action_url", "Button link", help="Where the button leads (all buttons but CALL)."),
        SettingField("event_title", "Event or offer title", help="Required for events and offers."),
        SettingField("event_start", "Starts", help="ISO date or date-time (2026-03-01 or 2026-03-01T18:30); events and offers."),
        SettingField("event_end", "Ends", help="ISO date or date-time; events and offers."),
        SettingField("offer_coupon", "Coupon code"),
        SettingField("offer_url", "Redeem online at"),
        SettingField("offer_terms", "Terms and conditions"),
    )

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        """The rules of a local post that per-field checks cannot see: what each topic needs."""
        settings = draft.settings
        topic = settings.get("topic", "STANDARD")
        issues = []
        if topic in ("EVENT", "OFFER"):
            missing = [name for name in ("event_title", "event_start", "event_end") if not settings.get(name)]
            issues += [Issue(("settings", name), "SETTING_REQUIRED", f"An {topic.lower()} needs {name.replace('_', ' ')}.") for name in missing]
            if not missing:
                issues += _schedule_issues(settings)
        else:
            stray = [name for name in ("event_title", "event_start", "event_end", "offer_coupon", "offer_url", "offer_terms") if settings.get(name)]
            issues += [Issue(("settings", name), "SETTING_INVALID", f"{name} belongs to an event or an offer; set topic.") for name in stray]
        action = settings.get("action")
        if action and topic == "OFFER":
            issues.append(Issue(("settings", "action"), "SETTING_INVALID", "Google shows no button on an offer; use offer_url."))
        elif action and action != "CALL" and not str(settings.get("action_url") or "").startswith(("https://", "http://")):
            issues.append(Issue(("settings", "action_url"), "SETTING_REQUIRED", f"A {action} button needs a link (action_url)."))
        return issues

    # -- connecting -----------------------------------------------------------------------

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        tokens = await request_tokens(ctx, TOKEN_URL, code_form(code=code, redirect_uri=redirect_uri, client_id=client_id, client_secret=client_secret), refreshing=False)
        locations = await _managed_locations(ctx, tokens.access_token)
        if not locations:
            raise Rejected("NO_LOCATION", "this Google user manages no Business Profile location")
        first = locations[0]
        return with_extra(tokens, business_account=first["account"], location=first["name"], location_title=first.get("title", ""))

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        return await refresh_tokens(ctx, TOKEN_URL, client_id=client_id, client_secret=client_secret, platform="Google", keep=LOCATION_CREDENTIALS)

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """The location the credentials name (or the first one managed), checked against the user's locations."""
        locations = await _managed_locations(ctx, credentials.get("access_token", ""))
        wanted = credentials.get("location") or (locations[0]["name"] if locations else "")
        found = next((location for location in locations if location["name"] == wanted), None)
        if found is None:
            raise Rejected("LOCATION_NOT_MANAGED", f"this Google user does not manage {wanted or 'any location'}")
        return AccountProfile(
            external_id=found["name"], handle=found.get("title") or found["name"], display_name=found.get("title", ""),
            account_type="location", raw={"account": found["account"], "name": found["name"], "title": found.get("title")},
        )

    # -- posts --------------------------------------------------------------------------------

    def _posts_url(self, ctx: ProviderContext) -> str:
        account, location = ctx.credential("business_account"), ctx.credential("location")
        if not account or not location:
            raise Rejected("LOCATION_NOT_SELECTED", "the account's credentials name no location: connect it again")
        return f"{POSTS_API}/{account}/{location}/localPosts"

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult:
        settings = request.settings
        topic = str(settings.get("topic") or "STANDARD")
        body: dict[str, Any] = {"languageCode": str(settings.get("language") or "en"), "summary": request.text, "topicType": topic}
        if settings.get("action"):
            body["callToAction"] = {"actionType": settings["action"]}
            if settings["action"] != "CALL":
                body["callToAction"]["url"] = settings["action_url"]
        if topic in ("EVENT", "OFFER"):
            body["event"] = {"title": settings["event_title"], "schedule": _schedule(settings)}
        if topic == "OFFER":
            offer = {"couponCode": settings.get("offer_coupon"), "redeemOnlineUrl": settings.get("offer_url"), "termsConditions": settings.get("offer_terms")}
            body["offer"] = {key: value for key, value in offer.items() if value}
        if request.media:
            body["media"] = [{"mediaFormat": "PHOTO", "sourceUrl": request.media[0].url}]
        response = await send(ctx, "POST", self._posts_url(ctx), json=body, headers=bearer(ctx), publishes=True)
        raise_for_google(response)
        post = json_object(response)
        if not post or not post.get("name"):
            raise Unconfirmed(f"Google answered {response.status_code} without the post's name")
        if post.get("state") == "REJECTED":
            raise Rejected("POST_REJECTED", "Google rejected the post under its content policy", raw=post)
        return _result(post)

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        response = await send(ctx, "DELETE", f"{POSTS_API}/{platform_post_id}", headers=bearer(ctx))
        if response.status_code == 404:
            return
        raise_for_google(response)

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """A post with the same summary and type created in the last day (newest first), else None."""
        topic = str(request.settings.get("topic") or "STANDARD")
        since = ctx.now() - RECONCILE_WINDOW
        async for post in self._posts(ctx, pages=1, complete=False):
            created = datetime.fromisoformat(str(post.get("createTime", "1970-01-01T00:00:00Z")).replace("Z", "+00:00"))
            if created >= since and post.get("summary") == request.text and post.get("topicType", "STANDARD") == topic:
                return _result(post)
        return None

    async def _posts(self, ctx: ProviderContext, *, pages: int, complete: bool = True) -> AsyncIterator[dict[str, Any]]:
        """The location's local posts, newest first, 100 a page, for at most ``pages`` pages.

        ``complete``: raise ``_TooManyPosts`` when more pages remain (a count would be short).
        """
        token = None
        for _ in range(pages):
            params = {"pageSize": "100", **({"pageToken": token} if token else {})}
            response = await send(ctx, "GET", self._posts_url(ctx), params=params, headers=bearer(ctx))
            raise_for_google(response)
            body = response.json()
            for post in body.get("localPosts") or []:
                yield post
            token = body.get("nextPageToken")
            if not token:
                return
        if complete:
            raise _TooManyPosts

    # -- metrics ------------------------------------------------------------------------------

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """The location's last 28 full days of performance (in ``extra``) and its number of posts."""
        location = ctx.credential("location") or ""
        end = ctx.now().date() - timedelta(days=1)
        start = end - timedelta(days=PERFORMANCE_DAYS - 1)
        params: list[tuple[str, str]] = [("dailyMetrics", metric) for metric in DAILY_METRICS]
        for side, day in (("startDate", start), ("endDate", end)):
            params += [(f"dailyRange.{side}.{part}", str(value)) for part, value in _google_date(day).items()]
        response = await send(ctx, "GET", PERFORMANCE_URL.format(location=location), params=params, headers=bearer(ctx))
        raise_for_google(response)
        performance = response.json()
        try:
            posts: int | None = sum([1 async for _ in self._posts(ctx, pages=MAX_POST_PAGES)])
        except _TooManyPosts:
            posts = None
        return AccountMetricSnapshot(captured_at=ctx.now(), posts=posts, extra=performance_totals(performance), raw=performance)


class _TooManyPosts(Exception):
    """The listing has more pages than are read: the count would be short, so it stays unknown."""


def performance_totals(answer: Mapping[str, Any]) -> dict[str, int | None]:
    """Each ``extra`` figure summed over the days of its metrics.

    A dated value without ``value`` is a zero (Google leaves zeros out of the JSON); a metric
    absent from the answer stays None, not 0.
    """
    totals: dict[str, int | None] = {figure: None for figure in DAILY_METRICS.values()}
    for series in answer.get("multiDailyMetricTimeSeries") or []:
        for daily in series.get("dailyMetricTimeSeries") or []:
            figure = DAILY_METRICS.get(daily.get("dailyMetric", ""))
            if figure is None:
                continue
            values = ((daily.get("timeSeries") or {}).get("datedValues")) or []
            totals[figure] = (totals[figure] or 0) + sum(reported(v.get("value", "0")) or 0 for v in values)
    return totals


def _result(post: Mapping[str, Any]) -> PublishResult:
    return PublishResult(
        platform_post_id=str(post["name"]), url=post.get("searchUrl"),
        raw={key: post.get(key) for key in ("name", "state", "searchUrl", "createTime", "topicType")},
    )


def _schedule_issues(settings: Mapping[str, Any]) -> list[Issue]:
    try:
        start, end = (_date(str(settings[f"event_{side}"])) for side in ("start", "end"))
    except ValueError:
        return [Issue(("settings", "event_start"), "SETTING_INVALID", "Event dates must be ISO dates or date-times, e.g. 2026-03-01T18:30.")]
    as_datetime = [moment if isinstance(moment, datetime) else datetime(moment.year, moment.month, moment.day) for moment in (start, end)]
    if as_datetime[1].replace(tzinfo=None) < as_datetime[0].replace(tzinfo=None):
        return [Issue(("settings", "event_end"), "SETTING_INVALID", "The event ends before it starts.")]
    return []



async def _managed_locations(ctx: ProviderContext, token: str) -> list[dict[str, Any]]:
    """Every location of every Business Profile account the user manages, each with its account's name."""
    response = await send(ctx, "GET", ACCOUNTS_URL, headers=bearer(ctx, token))
    raise_for_google(response)
    locations = []
    for account in response.json().get("accounts") or []:
        listed = await send(
            ctx, "GET", LOCATIONS_URL.format(account=account["name"]), params={"readMask": "name,title,storefrontAddress", "pageSize": "100"},
            headers=bearer(ctx, token),
        )
        raise_for_google(listed)
        locations += [{**location, "account": account["name"]} for location in listed.json().get("locations") or []]
    return locations


@hookimpl
def register_providers() -> list[Provider]:
    return [GoogleBusinessProfile()]
