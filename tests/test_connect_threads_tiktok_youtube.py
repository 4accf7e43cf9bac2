"""Threads, TikTok and YouTube connect through the gateway's OAuth flow (start, the platform's consent,
the callback, the code exchange, whose account) with each platform's real token and profile answers
scripted; each is ``configured: false`` until its client id and secret are set; ``socialgate
providers`` lists the three with their limits."""

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.accounts.accounts import open_credentials
from gateway.settings import load_settings
from gateway.storage.models import Account
from tests.provider_table import providers_table

APP_URI = "https://app.example.com/connected"
PROVIDERS = ("threads", "tiktok", "youtube")
ACCESS = {"threads": "THQVJlong-lived", "tiktok": "act.example12345Example12345Example", "youtube": "ya29.a0AfB_byC-example"}


@pytest.fixture
def settings(tmp_path, monkeypatch, request):
    """Each provider's OAuth client configured, unless the test asks for ``settings`` with False;
    the TikTok app not audited (the provider reads that when the plugins load)."""
    monkeypatch.delenv("SOCIALGATE_TIKTOK_AUDITED", raising=False)
    for provider in PROVIDERS:
        for suffix in ("CLIENT_ID", "CLIENT_SECRET"):
            name = f"SOCIALGATE_OAUTH_{provider.upper()}_{suffix}"
            if getattr(request, "param", True):
                monkeypatch.setenv(name, f"{provider}-{suffix.lower()}")
            else:
                monkeypatch.delenv(name, raising=False)
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path))


class Platforms:
    """Answers as Threads, TikTok and Google do, keeping what was sent."""

    def __init__(self):
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        url = str(request.url.copy_with(query=None))
        answers = {
            "https://graph.threads.net/oauth/access_token": {"access_token": "THQVJshort", "user_id": 25025320900401234},
            "https://graph.threads.net/access_token": {"access_token": ACCESS["threads"], "token_type": "bearer", "expires_in": 5183944},
            "https://graph.threads.net/v1.0/me": {"id": "25025320900401234", "username": "gatehouse", "name": "Gate House"},
            "https://open.tiktokapis.com/v2/oauth/token/": {
                "access_token": ACCESS["tiktok"], "expires_in": 86400, "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344",
                "refresh_expires_in": 31536000, "refresh_token": "rft.example", "scope": "user.info.basic,video.publish", "token_type": "Bearer"},
            "https://open.tiktokapis.com/v2/user/info/": {"data": {"user": {
                "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344", "display_name": "Gate House", "avatar_url": "https://p16.tiktokcdn.com/a.jpeg"}},
                "error": {"code": "ok", "message": "", "log_id": "20221011"}},
            "https://oauth2.googleapis.com/token": {"access_token": ACCESS["youtube"], "expires_in": 3599, "refresh_token": "1//0gExample",
                                                    "scope": "https://www.googleapis.com/auth/youtube.upload", "token_type": "Bearer"},
            "https://www.googleapis.com/youtube/v3/channels": {"kind": "youtube#channelListResponse", "items": [{
                "kind": "youtube#channel", "id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "snippet": {"title": "Gate House", "customUrl": "@gatehouse"}}]},
        }
        answers["https://open.tiktokapis.com/v2/post/publish/creator_info/query/"] = {"data": {
            "creator_username": "gatehouse", "creator_nickname": "Gate House",
            "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
            "comment_disabled": False, "duet_disabled": False, "stitch_disabled": True, "max_video_post_duration_sec": 600},
            "error": {"code": "ok", "message": "", "log_id": "20221011"}}
        if url in answers:
            return httpx.Response(200, json=answers[url])
        return httpx.Response(404, json={"error": {"message": f"unscripted {request.method} {url}"}})


@pytest.fixture
def platforms(api):
    script = Platforms()
    api.runtime.http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    return script


async def _start(api, key, provider):
    await api.graphql("""mutation($u: [String!]!) { setOAuthRedirectUris(input: {redirectUris: $u}) { userErrors { code } } }""", {"u": [APP_URI]}, key=key)
    body = await api.graphql("""mutation($p: String!, $r: String!) { startConnection(input: {provider: $p, redirectUri: $r}) {
        authorizeUrl connection { id } userErrors { field code message } } }""", {"p": provider, "r": APP_URI}, key=key)
    return body["data"]["startConnection"]


AUTHORIZE = {
    "threads": ("threads.net", "/oauth/authorize", "client_id", "threads_basic,threads_content_publish"),
    "tiktok": ("www.tiktok.com", "/v2/auth/authorize/", "client_key", "user.info.basic,video.publish"),
    "youtube": ("accounts.google.com", "/o/oauth2/v2/auth", "client_id", "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.force-ssl"),
}
HANDLES = {"threads": "gatehouse", "tiktok": "Gate House", "youtube": "@gatehouse"}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_connects_through_the_oauth_flow_and_keeps_a_refresh_token(api, org, platforms, provider):
    started = await _start(api, org.secret, provider)
    assert started["userErrors"] == []
    authorize = urlsplit(started["authorizeUrl"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    host, path, id_param, scopes = AUTHORIZE[provider]
    assert (authorize.netloc, authorize.path) == (host, path)
    assert params[id_param] == f"{provider}-client_id" and params["scope"].startswith(scopes)
    answer = await api.http.get(f"/oauth/{provider}/callback?code=the-code&state={params['state']}")
    assert answer.status_code == 303 and "status=succeeded" in answer.headers["location"], answer.headers.get("location")
    polled = (await api.graphql("""query($id: ID!) { connection(id: $id) { status errorCode account { id provider handle } } }""",
                                {"id": started["connection"]["id"]}, key=org.secret))["data"]["connection"]
    assert polled["status"] == "SUCCEEDED", polled
    assert (polled["account"]["provider"], polled["account"]["handle"]) == (provider, HANDLES[provider])
    async with api.runtime.database.read() as session:
        stored = await session.get(Account, polled["account"]["id"])
    credentials = open_credentials(api.runtime.secret_key, stored)
    assert credentials["access_token"] == ACCESS[provider] and credentials["refresh_token"]
    assert stored.token_expires_at is not None
    assert f"{provider}-client_secret" in platforms.sent[0].content.decode() + str(platforms.sent[0].url), "the client secret went to the token endpoint"
    assert ACCESS[provider] not in json.dumps(polled)


@pytest.mark.parametrize("settings", [False], indirect=True)
async def test_each_is_listed_but_not_configured_until_its_client_is_set(api, org):
    listed = await api.graphql("{ providers { id configured } }", key=org.secret)
    configured = {p["id"]: p["configured"] for p in listed["data"]["providers"]}
    assert {provider: configured[provider] for provider in PROVIDERS} == {provider: False for provider in PROVIDERS}
    for provider in PROVIDERS:
        [error] = (await _start(api, org.secret, provider))["userErrors"]
        assert error["code"] == "OAUTH_NOT_CONFIGURED" and f"SOCIALGATE_OAUTH_{provider.upper()}_CLIENT_ID" in error["message"]


async def test_configured_once_id_and_secret_are_set(api, org):
    listed = await api.graphql("{ providers { id configured limits { quotas { count cost scope operation } } } }", key=org.secret)
    providers = {p["id"]: p for p in listed["data"]["providers"]}
    assert all(providers[provider]["configured"] for provider in PROVIDERS)
    assert providers["youtube"]["limits"]["quotas"] == [{"count": 10000, "cost": 1600, "scope": "app", "operation": "publish"}]
    assert {"count": 100, "cost": 1, "scope": "account", "operation": "delete"} in providers["threads"]["limits"]["quotas"]


def test_socialgate_providers_lists_the_three_with_their_limits():
    rows = providers_table()
    assert rows["threads"]["text"] == "500 characters (an emoji counts its UTF-8 bytes)"
    assert rows["threads"]["quotas"] == "250 per 24 h; 100 deletes per 24 h"
    assert rows["youtube"]["quotas"] == "10000 units per 24 h per app, 1600 a post"
    assert rows["tiktok"]["text"] == "2200 UTF-16 code units"
    assert rows["youtube"]["text"] == "5000 bytes"


def test_the_engine_holds_posts_back_for_publishing_quotas_only():
    from gateway.engine.quotas import QuotaGate
    from gateway.plugins import load_plugins

    gate = QuotaGate(load_plugins(None), postgres=False)
    assert [(q.count, q.operation) for q in gate.quotas_of("threads")] == [(250, "publish")]
    assert [(q.count, q.cost) for q in gate.quotas_of("youtube")] == [(10_000, 1_600)]


async def test_a_tiktok_accounts_privacy_choices_come_from_its_creator_info(api, org, platforms):
    started = await _start(api, org.secret, "tiktok")
    state = parse_qs(urlsplit(started["authorizeUrl"]).query)["state"][0]
    await api.http.get(f"/oauth/tiktok/callback?code=the-code&state={state}")
    account = (await api.graphql("""query($id: ID!) { connection(id: $id) { account { id } } }""",
                                 {"id": started["connection"]["id"]}, key=org.secret))["data"]["connection"]["account"]
    query = """query($id: ID!) { account(id: $id) { settingChoices(setting: "privacy_level", refresh: true) { value extra } } }"""
    body = await api.graphql(query, {"id": account["id"]}, key=org.secret)
    # The app is not audited (the fixture's settings say nothing else): only SELF_ONLY is offered.
    assert body["data"]["account"]["settingChoices"] == [{"value": "SELF_ONLY", "extra": {"max_video_post_duration_sec": 600}}], body
    asked = [r for r in platforms.sent if r.url.path == "/v2/post/publish/creator_info/query/"]
    assert len(asked) == 1 and asked[0].headers["authorization"] == f"Bearer {ACCESS['tiktok']}"
