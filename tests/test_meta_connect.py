"""Facebook Pages and Instagram through the gateway's own OAuth connection flow and listings, with
Meta's real answers scripted: configured only once a client is set, one Page becomes one account,
the tokens stay sealed, and `socialgate providers` lists the three with their limits."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import settings_with_oauth_clients
from tests.provider_table import providers_table

GRAPH = "https://graph.facebook.com/v23.0"
APP_URI = "https://app.example.com/connected"
USER_TOKEN = "EAAB-long-lived-user-token"
PAGE_TOKEN = "EAAB-page-token"
IG_TOKEN = "IGAA-long-lived"


@pytest.fixture
def settings(tmp_path, monkeypatch):
    return settings_with_oauth_clients(tmp_path, monkeypatch, {"facebook": ("1234567890", "fb-app-secret"), "instagram": ("990602627938098", "ig-secret")})


def meta(request: httpx.Request) -> httpx.Response:
    """Meta's answers to the connection's requests."""
    url = str(request.url.copy_with(query=None))
    answers = {
        f"{GRAPH}/oauth/access_token": {"access_token": USER_TOKEN, "token_type": "bearer", "expires_in": 5183944},
        f"{GRAPH}/me/accounts": {"data": [{"id": "101", "name": "Corner Bakery", "access_token": PAGE_TOKEN}]},
        f"{GRAPH}/101": {"id": "101", "name": "Corner Bakery", "username": "cornerbakery"},
        "https://api.instagram.com/oauth/access_token": {"data": [{"access_token": "IGAA-short", "user_id": "17841400008460056", "permissions": "instagram_business_basic"}]},
        "https://graph.instagram.com/access_token": {"access_token": IG_TOKEN, "token_type": "bearer", "expires_in": 5183944},
        "https://graph.instagram.com/v23.0/me": {"user_id": "17841400008460056", "username": "cornerbakery.ig", "name": "Corner Bakery", "account_type": "BUSINESS"},
    }
    if url in answers:
        return httpx.Response(200, json=answers[url])
    return httpx.Response(400, json={"error": {"message": f"unscripted {request.method} {url}", "type": "OAuthException", "code": 803}})


@pytest.fixture
def sent(api):
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return meta(request)

    api.runtime.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return requests


PROVIDERS = "{ providers { id configured auth { oauth2 { callbackUrl pkce } } limits { mediaRequired quotas { count periodSeconds scope } } } }"


async def test_each_meta_provider_is_configured_only_once_its_client_is_set(api, org):
    listed = await api.graphql(PROVIDERS, key=org.secret)
    providers = {p["id"]: p for p in listed["data"]["providers"]}
    assert providers["facebook"]["configured"] is True and providers["instagram"]["configured"] is True
    assert providers["instagram_business"]["configured"] is False
    assert providers["instagram_business"]["auth"]["oauth2"]["callbackUrl"] == "http://127.0.0.1:8000/oauth/instagram_business/callback"
    for provider_id in ("instagram", "instagram_business"):
        assert providers[provider_id]["limits"]["quotas"] == [{"count": 50, "periodSeconds": 86400, "scope": "account"}]
        assert providers[provider_id]["limits"]["mediaRequired"] is True
    started = await _start(api, org, "instagram_business")
    assert [e["code"] for e in started["userErrors"]] == ["OAUTH_NOT_CONFIGURED"]
    assert "fb-app-secret" not in json.dumps(listed)


async def _start(api, org, provider_id):
    await api.graphql("""mutation($u: [String!]!) { setOAuthRedirectUris(input: {redirectUris: $u}) { userErrors { code } } }""", {"u": [APP_URI]}, key=org.secret)
    return (await api.graphql("""mutation($p: String!, $r: String!) { startConnection(input: {provider: $p, redirectUri: $r}) {
        authorizeUrl connection { id } userErrors { code message } } }""", {"p": provider_id, "r": APP_URI}, key=org.secret))["data"]["startConnection"]


async def _connect(api, org, provider_id):
    started = await _start(api, org, provider_id)
    assert started["userErrors"] == []
    params = {k: v[0] for k, v in parse_qs(urlsplit(started["authorizeUrl"]).query).items()}
    answer = await api.http.get(f"/oauth/{provider_id}/callback?code=AQD-code&state={params['state']}")
    assert answer.status_code == 303 and "status=succeeded" in answer.headers["location"], answer.headers.get("location")
    polled = (await api.graphql("""query($id: ID!) { connection(id: $id) { status account { id provider handle displayName accountType externalId } } }""",
                                {"id": started["connection"]["id"]}, key=org.secret))["data"]["connection"]
    return params, polled


async def test_a_facebook_login_becomes_one_page_account(api, org, sent):
    params, polled = await _connect(api, org, "facebook")
    assert params["scope"].split(",")[:2] == ["pages_show_list", "pages_manage_posts"] and "code_challenge" not in params
    account = polled["account"]
    assert (account["provider"], account["externalId"], account["handle"], account["accountType"]) == ("facebook", "101", "cornerbakery", "page")
    lines = [(r.method, str(r.url.copy_with(query=None))) for r in sent]
    assert lines == [("GET", f"{GRAPH}/oauth/access_token"), ("GET", f"{GRAPH}/oauth/access_token"), ("GET", f"{GRAPH}/me/accounts"), ("GET", f"{GRAPH}/101")]
    assert sent[1].url.params["grant_type"] == "fb_exchange_token"
    assert sent[3].headers["authorization"] == f"Bearer {PAGE_TOKEN}", "the account speaks with the Page token"
    assert PAGE_TOKEN not in json.dumps(polled) and USER_TOKEN not in json.dumps(polled)


async def test_an_instagram_login_becomes_an_instagram_account_with_a_60_day_token(api, org, sent):
    params, polled = await _connect(api, org, "instagram")
    assert params["redirect_uri"] == "http://127.0.0.1:8000/oauth/instagram/callback"
    assert params["scope"] == "instagram_business_basic,instagram_business_content_publish,instagram_business_manage_comments,instagram_business_manage_insights"
    account = polled["account"]
    assert (account["provider"], account["externalId"], account["handle"]) == ("instagram", "17841400008460056", "cornerbakery.ig")
    assert sent[1].url.params["grant_type"] == "ig_exchange_token"
    tokens = await api.graphql("""query($id: ID!) { node(id: $id) { ... on Account { tokenExpiresAt } } }""", {"id": account["id"]}, key=org.secret)
    expires = tokens["data"]["node"]["tokenExpiresAt"]
    left = datetime.fromisoformat(expires) - datetime.now(UTC)
    assert timedelta(days=59) < left <= timedelta(days=60), "the long-lived token's 60 days, not the short one's hour"
    assert IG_TOKEN not in json.dumps(tokens)


def test_socialgate_providers_lists_facebook_and_both_instagrams_with_their_limits():
    rows = providers_table()
    facebook = rows["facebook"]
    assert (facebook["text"], facebook["media"]) == ("63206 characters", "10 (image, video)")
    assert "processing" in facebook["capabilities"].split(", ")
    assert facebook["quotas"] == "none", "Facebook declares no posting quota of its own"
    for provider_id in ("instagram", "instagram_business"):
        row = rows[provider_id]
        assert (row["text"], row["media"]) == ("2200 characters", "10 (image, video), required")
        assert row["quotas"] == "50 per 24 h", row


def test_a_quota_in_units_per_app_is_labelled_with_what_a_post_costs():
    from gateway.plugins import quota_label as _quota_label
    from providers import Quota

    assert _quota_label(Quota(10_000, 86_400, "app", cost=1_600)) == "10000 units per 24 h per app, 1600 a post"
    assert _quota_label(Quota(300, 10_800)) == "300 per 3 h"
    assert _quota_label(Quota(5, 90)) == "5 per 90 s"
