"""What every Meta plugin shares about the Graph API: hosts, calls, errors, Facebook Login, insights.

``facebook``, ``instagram``, ``instagram_business`` and ``meta_ads`` all speak the same Graph
API (``graph.facebook.com``, or ``graph.instagram.com`` for Instagram Login), with the same
error body and the same habit of failing a whole insights call for one metric it does not know.
Keeping that here means one error table for the four of them, and one place to move when Meta
ships the next version.

Errors: ``{"error": {"message", "type", "code", "error_subcode", "is_transient", "error_user_msg",
"fbtrace_id"}}``.

| code (subcode) | meaning | typed error |
|---|---|---|
| 190, 102 (subcodes 458–467, 492) | token expired, revoked, password changed | ``AuthExpired`` |
| 4, 17, 32, 613, 80000–80014 | app, user, Page and Business Use Case rate limits | ``RateLimited`` |
| 9 (2207042) | Instagram's content publishing limit reached | ``RateLimited`` |
| 4 (2207051) | Instagram suspects spam | ``Rejected`` |
| 1, 2, -1, -2, or ``is_transient: true``; any 5xx | Meta's own trouble (-2: media download timed out) | ``TransientError`` |
| 100 (33) | the object does not exist (or is not ours to see) | ``Rejected("NOT_FOUND")`` |
| 368 | blocked for a policy violation | ``Rejected("META_368")`` |
| anything else (100, 10, 200, 506, 2207xxx…) | a refusal | ``Rejected("META_{code}_{subcode}")`` |

``X-Business-Use-Case-Usage`` says how many minutes until access returns; a rate limit carries
that wait (None when Meta does not say, and the engine's backoff decides).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from providers import AuthExpired, ProviderContext, ProviderError, RateLimited, Rejected, TokenSet, TransientError
from providers.http import json_object, send
from providers.oauth import token_set_from

GRAPH_VERSION = "v23.0"
FACEBOOK_GRAPH = f"https://graph.facebook.com/{GRAPH_VERSION}"
INSTAGRAM_GRAPH = f"https://graph.instagram.com/{GRAPH_VERSION}"
FACEBOOK_AUTHORIZE_URL = f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth"
FACEBOOK_TOKEN_URL = f"{FACEBOOK_GRAPH}/oauth/access_token"

AUTH_CODES = {102, 190}
RATE_LIMIT_CODES = {4, 17, 32, 613, *range(80000, 80015)}
RATE_LIMIT_SUBCODES = {2207042}  # "You reached maximum number of posts that is allowed to be published"
TRANSIENT_CODES = {1, 2, -1, -2}  # -1/-2: Instagram's server and media-download trouble ("try again")
# Refusals that share a rate-limit code: 2207051 (code 4) is Instagram suspecting spam, not a limit.
REFUSED_SUBCODES = {2207051}
INVALID_METRIC_CODE = 100
# Meta keeps Page, post and Instagram media insights for two years (Graph API "Insights").
INSIGHTS_KEPT_DAYS = 730
# How many recent posts a reconcile reads: a post whose answer was lost is among the newest.
RECENT_POSTS = 25


def usage_wait(response: httpx.Response) -> float | None:
    """Minutes until access returns, from ``X-Business-Use-Case-Usage``, as seconds."""
    try:
        usage = json.loads(response.headers.get("X-Business-Use-Case-Usage", "{}"))
    except ValueError:
        return None
    waits = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else ()) if isinstance(entries, list)
        for entry in entries if isinstance(entry, dict)
    ]
    minutes = [w for w in waits if isinstance(w, int | float)]
    return float(max(minutes)) * 60 if minutes else None


def graph_error(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Graph API answer (empty when the body has none).

    Instagram Login's code exchange (``api.instagram.com``) answers in an older, flat shape,
    ``{"error_type", "code", "error_message"}``, read here as the same object.
    """
    body = json_object(response) or {}
    error = body.get("error")
    if isinstance(error, dict):
        return error
    if "error_message" in body:
        return {"message": body["error_message"], "type": body.get("error_type"), "code": body.get("code")}
    return {}


def raise_for(response: httpx.Response) -> None:
    """The typed error a Graph API error body stands for (nothing on a success)."""
    if response.is_success:
        return
    error = graph_error(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    message = str(error.get("error_user_msg") or error.get("message") or response.reason_phrase)[:500]
    status = response.status_code
    word = f"META_{code}" + (f"_{subcode}" if subcode else "") if code is not None else f"HTTP_{status}"
    if code in AUTH_CODES or status == 401:
        raise AuthExpired(message, code=word, http_status=status, raw=error)
    if subcode in REFUSED_SUBCODES:
        raise Rejected(word, message, http_status=status, raw=error)
    if code in RATE_LIMIT_CODES or subcode in RATE_LIMIT_SUBCODES or status == 429:
        raise RateLimited(usage_wait(response), message, code=word, http_status=status, raw=error)
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
        raise TransientError(message, code=word, http_status=status, raw=error)
    if code == 100 and subcode == 33:
        raise Rejected("NOT_FOUND", message, http_status=status, raw=error)
    raise Rejected(word, message, http_status=status, raw=error)


async def call(
    ctx: ProviderContext, method: str, url: str, *, token: str | None = None, publishes: bool = False, **kwargs: Any
) -> dict[str, Any]:
    """One Graph API request with the account's token as a Bearer header (never in the URL, where logs keep it)."""
    bearer = token if token is not None else ctx.credential("access_token") or ""
    response = await send(ctx, method, url, headers={"Authorization": f"Bearer {bearer}"}, publishes=publishes, **kwargs)
    raise_for(response)
    return json_object(response) or {}


# -- Facebook Login: a long-lived user token, then the Pages it manages ------------------------


async def facebook_user_token(
    ctx: ProviderContext, *, code: str, redirect_uri: str, client_id: str, client_secret: str
) -> TokenSet:
    """Trade the code for a user token, then that for a long-lived one (``fb_exchange_token``, ~60 days).

    Page tokens read with a long-lived user token do not expire, which is why both Facebook
    Login providers take this step before ``/me/accounts``.
    """
    params = {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri, "code": code}
    short = await _token_request(ctx, params)
    exchange = {"grant_type": "fb_exchange_token", "client_id": client_id, "client_secret": client_secret, "fb_exchange_token": short}
    response = await send(ctx, "GET", FACEBOOK_TOKEN_URL, params=exchange)
    raise_for(response)
    return token_set_from(json_object(response) or {}, ctx)


async def _token_request(ctx: ProviderContext, params: Mapping[str, str]) -> str:
    response = await send(ctx, "GET", FACEBOOK_TOKEN_URL, params=dict(params))
    raise_for(response)
    return token_set_from(json_object(response) or {}, ctx).access_token


async def managed_pages(ctx: ProviderContext, user_token: str, fields: str) -> list[dict[str, Any]]:
    """The Pages the user granted the app, each with its Page token (``GET /me/accounts``)."""
    body = await call(ctx, "GET", f"{FACEBOOK_GRAPH}/me/accounts", token=user_token, params={"fields": fields, "limit": "100"})
    return [page for page in body.get("data") or [] if isinstance(page, dict) and page.get("id")]


def page_token_set(page: Mapping[str, Any], granted: TokenSet, extra: Mapping[str, str]) -> TokenSet:
    """The account's credentials for one Page: its Page token (no expiry, no refresh token)."""
    token = page.get("access_token")
    if not isinstance(token, str) or not token:
        raise Rejected("PAGE_TOKEN_MISSING", f"Meta listed Page {page.get('id')} without a Page token: grant pages_show_list and a Page role")
    return TokenSet(access_token=token, scopes=granted.scopes, extra=dict(extra))


# -- reading ----------------------------------------------------------------------------------


async def recent_match(ctx: ProviderContext, url: str, fields: str, text_field: str, text: str) -> dict[str, Any] | None:
    """The newest of the last ``RECENT_POSTS`` objects at ``url`` whose ``text_field`` is ``text``.

    Meta takes no idempotency key, so after a lost answer the post is recognised by its text; a
    post without text (a story, a bare photo) cannot be recognised, and None leaves it to a person.
    """
    if not text.strip():
        return None
    body = await call(ctx, "GET", url, params={"fields": fields, "limit": str(RECENT_POSTS)})
    for row in body.get("data") or []:
        if isinstance(row, dict) and (row.get(text_field) or "") == text:
            return row
    return None


def insight_value(entry: Mapping[str, Any]) -> Any:
    """An insights entry's figure: ``values[0].value`` (or ``total_value.value`` on newer metrics)."""
    values = entry.get("values")
    if isinstance(values, list) and values and isinstance(values[0], dict):
        return values[0].get("value")
    total = entry.get("total_value")
    return total.get("value") if isinstance(total, dict) else None


async def insights(ctx: ProviderContext, url: str, groups: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read each group of metrics (``{"label": "metric_a,metric_b"}``) in its own call.

    Meta fails the whole call when one metric is invalid for the object (a renamed metric, a
    figure a media type lacks: ``(#100) … must be a valid insights metric``); asking per group
    keeps that failure to the figures it concerns, which stay absent (None, not 0). Any other
    error (token, rate limit) is raised: those concern every figure.
    Returns (metric name → value, raw answers by group).
    """
    values: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for label, metrics in groups.items():
        response = await send(
            ctx, "GET", url, params={"metric": metrics},
            headers={"Authorization": f"Bearer {ctx.credential('access_token') or ''}"},
        )
        if response.status_code == 400 and graph_error(response).get("code") == INVALID_METRIC_CODE:
            raw[label] = graph_error(response)
            continue
        raise_for(response)
        raw[label] = body = json_object(response) or {}
        for entry in body.get("data") or []:
            if isinstance(entry, dict) and entry.get("name"):
                values[entry["name"]] = insight_value(entry)
    return values, raw


async def comment(ctx: ProviderContext, url: str, message: str) -> dict[str, Any]:
    """Post the first comment under a just-published post; a failure is reported, never raised.

    The post is live by now: failing the target over its comment would invite a second post.
    """
    try:
        return await call(ctx, "POST", url, data={"message": message})
    except ProviderError as error:
        ctx.log.warning("the first comment was not posted: %s", error.code)
        return {"error": error.code, "message": error.message}


def age(ctx: ProviderContext, issued_at: str | None) -> timedelta | None:
    """How long ago a token was issued (``issued_at`` credential, ISO 8601), or None when unknown."""
    if not issued_at:
        return None
    try:
        return ctx.now() - datetime.fromisoformat(issued_at)
    except ValueError:
        return None
