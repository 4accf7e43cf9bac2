"""Connecting ad accounts through the existing flows, with the platforms' real answers scripted:
Meta through the OAuth handshake and its callback, Apple Search Ads through the credentials form
(with an ES256 client assertion), then a JPY budget and a KWD budget carried through GraphQL."""

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import settings_with_oauth_clients

GRAPH = "https://graph.facebook.com/v23.0"
APPLE = "https://api.searchads.apple.com/api/v5"
APP_URI = "https://app.example.com/connected"
TOKEN = "EAAB-meta-user-token"


@pytest.fixture
def settings(tmp_path, monkeypatch):
    return settings_with_oauth_clients(tmp_path, monkeypatch, {"meta_ads": ("1234567890", "meta-app-secret")})


class Platform:
    """Answers as Meta and Apple do, keeping what was sent."""

    def __init__(self):
        self.sent: list[httpx.Request] = []
        self.objects: dict[str, dict] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        url = str(request.url.copy_with(query=None))
        if url == f"{GRAPH}/oauth/access_token":
            return httpx.Response(200, json={"access_token": TOKEN, "token_type": "bearer", "expires_in": 5183944})
        if url == f"{GRAPH}/me":
            return httpx.Response(200, json={"id": "10160000000000001", "name": "Ada Admin"})
        if url == f"{GRAPH}/me/adaccounts":
            return httpx.Response(200, json={"data": [
                {"id": "act_111", "name": "Japan", "currency": "JPY", "timezone_name": "Asia/Tokyo"},
                {"id": "act_222", "name": "Kuwait", "currency": "KWD", "timezone_name": "Asia/Kuwait"},
            ], "paging": {"cursors": {"before": "a", "after": "b"}}})
        if request.method == "POST" and url.endswith("/campaigns") and url.startswith(GRAPH):
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            object_id = f"1202100000000000{len(self.objects) + 1:02d}"
            self.objects[object_id] = {"id": object_id, "name": form["name"], "status": form["status"], "effective_status": form["status"],
                                       "objective": form["objective"], "daily_budget": form["daily_budget"]}
            return httpx.Response(200, json={"id": object_id})
        if request.method == "GET" and url.removeprefix(f"{GRAPH}/") in self.objects:
            return httpx.Response(200, json=self.objects[url.removeprefix(f"{GRAPH}/")])
        if url == "https://appleid.apple.com/auth/oauth2/token":
            return httpx.Response(200, json={"access_token": "apple-access", "token_type": "Bearer", "expires_in": 3600})
        if url == f"{APPLE}/acls":
            return httpx.Response(200, json={"data": [{"orgName": "Shop KW", "orgId": 40669820, "currency": "KWD", "paymentModel": "PAYG",
                                                        "roleNames": ["API Campaign Manager"], "timeZone": "Asia/Kuwait"}], "pagination": None, "error": None})
        if url == f"{APPLE}/campaigns" and request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(200, json={"data": {"id": 542370539, "orgId": 40669820, "name": body["name"], "status": body["status"],
                                                      "servingStatus": "NOT_RUNNING", "dailyBudgetAmount": body["dailyBudgetAmount"],
                                                      "adamId": body["adamId"], "countriesOrRegions": body["countriesOrRegions"], "deleted": False},
                                             "pagination": None, "error": None})
        return httpx.Response(404, json={"error": {"message": f"unscripted {request.method} {url}", "code": 803}})


@pytest.fixture
def platform(api):
    script = Platform()
    api.runtime.http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    return script


async def _ad_accounts(api, key, account_id):
    body = await api.graphql("""mutation($id: ID!) { connectAdAccounts(input: {accountId: $id}) {
        adAccounts { id externalId currency provider } userErrors { code message } } }""", {"id": account_id}, key=key)
    return body["data"]["connectAdAccounts"]


CREATE = """mutation($input: CreateAdCampaignInput!) { createAdCampaign(input: $input) {
  job { status } adCampaign { externalId dailyBudget { amountMinor currency formatted } } userErrors { code message } } }"""


async def test_meta_ad_accounts_connect_through_facebook_login(api, org, platform):
    await api.graphql("""mutation($u: [String!]!) { setOAuthRedirectUris(input: {redirectUris: $u}) { userErrors { code } } }""", {"u": [APP_URI]}, key=org.secret)
    started = (await api.graphql("""mutation { startConnection(input: {provider: "meta_ads", redirectUri: "%s"}) {
        authorizeUrl connection { id } userErrors { code message } } }""" % APP_URI, key=org.secret))["data"]["startConnection"]
    assert started["userErrors"] == []
    authorize = urlsplit(started["authorizeUrl"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert authorize.netloc == "www.facebook.com" and params["scope"] == "ads_management,ads_read" and params["client_id"] == "1234567890"
    # Facebook sends the browser back with a code and the state.
    answer = await api.http.get(f"/oauth/meta_ads/callback?code=AQD-code&state={params['state']}")
    assert answer.status_code == 303 and "status=succeeded" in answer.headers["location"]
    exchange = platform.sent[0]
    assert exchange.url.params["client_secret"] == "meta-app-secret" and exchange.url.params["code"] == "AQD-code"
    polled = (await api.graphql("""query($id: ID!) { connection(id: $id) { status account { id provider handle } } }""",
                                {"id": started["connection"]["id"]}, key=org.secret))["data"]["connection"]
    assert polled["status"] == "SUCCEEDED" and polled["account"]["provider"] == "meta_ads"

    connected = await _ad_accounts(api, org.secret, polled["account"]["id"])
    by_currency = {a["currency"]: a for a in connected["adAccounts"]}
    assert [(a["externalId"], a["provider"]) for a in connected["adAccounts"]] == [("act_111", "meta_ads"), ("act_222", "meta_ads")]

    yen = (await api.graphql(CREATE, {"input": {"adAccountId": by_currency["JPY"]["id"], "name": "Tokyo",
                                                "dailyBudget": {"amountMinor": "1234", "currency": "JPY"}}}, key=org.secret))["data"]["createAdCampaign"]
    assert yen["adCampaign"]["dailyBudget"] == {"amountMinor": "1234", "currency": "JPY", "formatted": "¥1,234"}
    kwd = (await api.graphql(CREATE, {"input": {"adAccountId": by_currency["KWD"]["id"], "name": "Kuwait",
                                                "dailyBudget": {"amountMinor": "12340", "currency": "KWD"}}}, key=org.secret))["data"]["createAdCampaign"]
    assert kwd["adCampaign"]["dailyBudget"]["amountMinor"] == "12340"
    posted = [parse_qs(r.content.decode())["daily_budget"][0] for r in platform.sent if r.method == "POST" and r.url.path.endswith("/campaigns")]
    assert posted == ["1234", "1234"]  # whole yen; KWD in Meta's hundredths
    refused = (await api.graphql(CREATE, {"input": {"adAccountId": by_currency["KWD"]["id"], "name": "Fils",
                                                    "dailyBudget": {"amountMinor": "12345", "currency": "KWD"}}}, key=org.secret))["data"]["createAdCampaign"]
    assert [e["code"] for e in refused["userErrors"]] == ["AMOUNT_NOT_REPRESENTABLE"] and refused["job"]["status"] == "FAILED"
    assert len([r for r in platform.sent if r.method == "POST" and r.url.path.endswith("/campaigns")]) == 2  # nothing sent for it
    assert TOKEN not in json.dumps(connected) and TOKEN not in json.dumps(yen)


async def test_apple_search_ads_connects_with_a_signed_client_assertion(api, org, platform):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    credentials = {"client_id": "SEARCHADS.27478e71-3bb0-4588-998c-182e2b405577", "team_id": "SEARCHADS.27478e71-3bb0-4588-998c-182e2b405577",
                   "key_id": "bacaebda-e219-41ee-a907-e2c25b24d1b2", "private_key": pem}
    body = await api.graphql("""mutation($input: ConnectAccountInput!) { connectAccount(input: $input) {
        account { id provider handle accountType } userErrors { code message } } }""",
                             {"input": {"provider": "apple_search_ads", "credentials": credentials}}, key=org.secret)
    account = body["data"]["connectAccount"]["account"]
    assert (account["provider"], account["handle"], account["accountType"]) == ("apple_search_ads", "Shop KW", "organization")
    assertion = parse_qs(platform.sent[0].content.decode())["client_secret"][0]
    claims = jwt.decode(assertion, key.public_key(), algorithms=["ES256"], audience="https://appleid.apple.com")
    assert claims["sub"] == credentials["client_id"]
    assert pem not in json.dumps(body)

    [org_account] = (await _ad_accounts(api, org.secret, account["id"]))["adAccounts"]
    assert (org_account["externalId"], org_account["currency"]) == ("40669820", "KWD")
    made = (await api.graphql(CREATE, {"input": {"adAccountId": org_account["id"], "name": "Spring", "dailyBudget": {"amountMinor": "12345", "currency": "KWD"},
                                                 "platformFields": {"adamId": 1252497129, "countriesOrRegions": ["KW"]}}}, key=org.secret))["data"]["createAdCampaign"]
    assert made["userErrors"] == [] and made["adCampaign"] == {"externalId": "542370539", "dailyBudget": {"amountMinor": "12345", "currency": "KWD", "formatted": "KWD12.345"}}
    sent = json.loads([r for r in platform.sent if r.url.path.endswith("/campaigns")][0].content)
    assert sent["dailyBudgetAmount"] == {"amount": "12.345", "currency": "KWD"}
    assert [r for r in platform.sent if r.url.path.endswith("/campaigns")][0].headers["X-AP-Context"] == "orgId=40669820"
