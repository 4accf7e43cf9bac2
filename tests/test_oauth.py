"""The OAuth connect flow through the API: startConnection, the callback, connection(id)."""

import asyncio
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, update

from gateway.accounts.accounts import open_credentials
from gateway.accounts.oauth import STATE_TTL, pkce_challenge
from gateway.core.clock import utcnow
from gateway.settings import load_settings
from gateway.storage.models import Account, Connection
from providers import OAuth2Spec
from tests.conftest import make_org_with_key
from tests.oauth_flow import (  # noqa: F401 - fixtures
    APP_URI,
    allow,
    callback,
    connect,
    consent,
    platform,
    poll,
    private_urls,
    settings,
    standin,
    start,
    tls,
)
from tests.oauth_platform import CLIENT_SECRET, StandInProvider, install, s256, standin_provider


async def _count(api, model) -> int:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar()


async def _connection_row(api, connection_id) -> Connection:
    async with api.runtime.database.read() as session:
        return await session.get(Connection, connection_id)


async def test_connect_flow_creates_an_account_with_sealed_tokens(api, org, platform, standin, caplog):
    assert (await allow(api, org.secret))["userErrors"] == []
    started = await start(api, org.secret)
    assert started["userErrors"] == []
    connection = started["connection"]
    assert connection["status"] == "PENDING" and connection["provider"] == "standin" and connection["account"] is None
    authorize = urlsplit(started["authorizeUrl"])
    params = {name: values[0] for name, values in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == platform.base_url + "/authorize"
    assert params["response_type"] == "code" and params["client_id"] == "standin-client"
    assert params["redirect_uri"] == "http://127.0.0.1:8000/oauth/standin/callback"
    assert params["scope"] == "posts.write offline" and params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 43

    # Only a hash of the state and the sealed verifier are stored.
    row = await _connection_row(api, connection["id"])
    assert params["state"].encode() not in row.state_hash
    assert row.pkce_verifier is not None and b"verifier" not in row.pkce_verifier
    assert row.expires_at - row.created_at == STATE_TTL

    answer = await callback(api, await consent(api, started["authorizeUrl"]))
    assert answer.status_code == 303
    assert answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["location"] == f"{APP_URI}?connection_id={connection['id']}&status=succeeded"

    # PKCE: the verifier sent to the token endpoint is the one whose S256 challenge was authorized.
    [exchange] = platform.server.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert s256(exchange["code_verifier"]) == params["code_challenge"] == pkce_challenge(exchange["code_verifier"])
    assert exchange["redirect_uri"] == params["redirect_uri"]

    polled = await poll(api, org.secret, connection["id"])
    assert polled["status"] == "SUCCEEDED" and polled["errorCode"] is None and polled["completedAt"]
    account = polled["account"]
    assert account["handle"] == "alice" and account["provider"] == "standin" and account["status"] == "ACTIVE"
    async with api.runtime.database.read() as session:
        stored = await session.get(Account, account["id"])
    credentials = open_credentials(api.runtime.secret_key, stored)
    assert credentials["access_token"] in platform.server.access_tokens
    assert credentials["refresh_token"] in platform.server.refresh_tokens
    assert credentials["access_token"].encode() not in stored.credentials
    assert timedelta(minutes=59) < stored.token_expires_at - utcnow() <= timedelta(hours=1)
    assert stored.organization_id == org.organization_id
    # Neither the client secret nor the tokens appear in any answer or log line.
    listing = await api.http.post(
        "/graphql", json={"query": "{ accounts { nodes { id handle metadata tokenExpiresAt } } providers { id auth { oauth2 { callbackUrl } } } }"},
        headers={"Authorization": f"Bearer {org.secret}"},
    )
    for secret in (CLIENT_SECRET, credentials["access_token"], credentials["refresh_token"]):
        assert secret not in listing.text and secret not in caplog.text


async def test_reconnecting_the_same_identity_updates_its_account(api, org, platform, standin):
    await allow(api, org.secret)
    first, _ = await connect(api, org.secret)
    second, landed = await connect(api, org.secret)
    assert landed["status"] == ["succeeded"]
    first_account = (await poll(api, org.secret, first))["account"]["id"]
    assert (await poll(api, org.secret, second))["account"]["id"] == first_account
    assert await _count(api, Account) == 1
    async with api.runtime.database.read() as session:
        account = await session.get(Account, first_account)
    assert open_credentials(api.runtime.secret_key, account)["access_token"] == list(platform.server.access_tokens)[-1]


async def test_a_provider_without_pkce_sends_neither_challenge_nor_verifier(api, org, platform):
    install(api.runtime, standin_provider(platform.base_url, pkce=False))
    await allow(api, org.secret)
    started = await start(api, org.secret)
    assert "code_challenge" not in started["authorizeUrl"]
    assert (await _connection_row(api, started["connection"]["id"])).pkce_verifier is None
    answer = await callback(api, await consent(api, started["authorizeUrl"]))
    assert "status=succeeded" in answer.headers["location"]
    assert "code_verifier" not in platform.server.token_requests[0]


async def test_a_swapped_pkce_challenge_fails_the_exchange(api, org, platform, standin):
    """An authorization obtained for another challenge cannot be redeemed with our verifier."""
    await allow(api, org.secret)
    started = await start(api, org.secret)
    params = parse_qs(urlsplit(started["authorizeUrl"]).query)
    forged = started["authorizeUrl"].replace(params["code_challenge"][0], s256("an attacker's verifier"))
    answer = await callback(api, await consent(api, forged))
    landed = parse_qs(urlsplit(answer.headers["location"]).query)
    assert landed["status"] == ["failed"] and landed["error"] == ["EXCHANGE_FAILED"]
    polled = await poll(api, org.secret, started["connection"]["id"])
    assert polled["status"] == "FAILED" and polled["errorCode"] == "EXCHANGE_FAILED"
    assert "invalid_grant" in polled["errorMessage"].lower()
    assert polled["account"] is None and await _count(api, Account) == 0


async def test_denied_consent_fails_the_connection_without_an_exchange(api, org, platform, standin):
    await allow(api, org.secret)
    platform.server.deny_consent = True
    started = await start(api, org.secret)
    answer = await callback(api, await consent(api, started["authorizeUrl"]))
    connection_id = started["connection"]["id"]
    assert answer.headers["location"] == f"{APP_URI}?connection_id={connection_id}&status=failed&error=CONSENT_DENIED"
    polled = await poll(api, org.secret, connection_id)
    assert (polled["status"], polled["errorCode"], polled["account"]) == ("FAILED", "CONSENT_DENIED", None)
    assert platform.server.token_requests == [] and await _count(api, Account) == 0


async def test_other_platform_errors_and_a_missing_code_fail_with_their_codes(api, org, platform, standin):
    await allow(api, org.secret)
    for query, code in [("error=server_error&error_description=busy%0Anow", "AUTHORIZATION_FAILED"), ("", "CODE_MISSING")]:
        started = await start(api, org.secret)
        location = await consent(api, started["authorizeUrl"])
        state = parse_qs(urlsplit(location).query)["state"][0]
        answer = await api.http.get(f"/oauth/standin/callback?state={state}&{query}")
        assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == [code]
        polled = await poll(api, org.secret, started["connection"]["id"])
        assert polled["errorCode"] == code and "\n" not in polled["errorMessage"]
    assert platform.server.token_requests == []


@pytest.mark.parametrize("query", ["code=abc&state=not-a-state-we-issued", "code=abc", "state=", "error=access_denied"])
async def test_an_unknown_state_gets_a_plain_400_and_no_redirect(api, query):
    answer = await api.http.get(f"/oauth/standin/callback?{query}")
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["cache-control"] == "no-store"
    assert "not valid" in answer.text


async def test_an_expired_state_fails_without_an_exchange(api, org, platform, standin):
    await allow(api, org.secret)
    started = await start(api, org.secret)
    connection_id = started["connection"]["id"]
    location = await consent(api, started["authorizeUrl"])
    async with api.runtime.database.write() as session:
        await session.execute(update(Connection).values(expires_at=utcnow() - timedelta(seconds=1)))
    # Polled before the browser comes back, it already reads as failed: it can no longer succeed.
    assert (await poll(api, org.secret, connection_id))["errorCode"] == "STATE_EXPIRED"
    answer = await callback(api, location)
    assert answer.headers["location"].endswith(f"connection_id={connection_id}&status=failed&error=STATE_EXPIRED")
    assert (await _connection_row(api, connection_id)).status == "failed"
    assert platform.server.token_requests == [] and await _count(api, Account) == 0


async def test_a_state_is_single_use(api, org, platform, standin):
    await allow(api, org.secret)
    started = await start(api, org.secret)
    connection_id = started["connection"]["id"]
    location = await consent(api, started["authorizeUrl"])
    first = await callback(api, location)
    replay = await callback(api, location)
    assert "status=succeeded" in first.headers["location"]
    assert replay.headers["location"] == f"{APP_URI}?connection_id={connection_id}&status=failed&error=STATE_ALREADY_USED"
    # The replay changed nothing: the connection keeps its outcome, the code was exchanged once.
    assert (await poll(api, org.secret, connection_id))["status"] == "SUCCEEDED"
    assert platform.server.grant_types() == ["authorization_code"]


async def test_concurrent_callbacks_of_one_state_exchange_once(api, org, platform, standin):
    await allow(api, org.secret)
    started = await start(api, org.secret)
    location = await consent(api, started["authorizeUrl"])
    answers = await asyncio.gather(*(callback(api, location) for _ in range(5)))
    outcomes = sorted(parse_qs(urlsplit(a.headers["location"]).query).get("error", ["none"])[0] for a in answers)
    assert outcomes == ["STATE_ALREADY_USED"] * 4 + ["none"]
    assert platform.server.grant_types() == ["authorization_code"] and await _count(api, Account) == 1


async def test_a_failed_exchange_fails_the_connection(api, org, platform, standin):
    await allow(api, org.secret)
    platform.server.token_failures = [503]
    _connection_id, landed = await connect(api, org.secret)
    assert landed["status"] == ["failed"] and landed["error"] == ["EXCHANGE_FAILED"]
    assert await _count(api, Account) == 0


@pytest.mark.parametrize("private_urls", [False])
async def test_a_platform_on_a_private_address_is_refused_by_the_ssrf_guard(api, org, platform, standin):
    await allow(api, org.secret)
    connection_id, landed = await connect(api, org.secret)
    assert landed["error"] == ["EXCHANGE_FAILED"]
    polled = await poll(api, org.secret, connection_id)
    assert "did not exchange the authorization code" in polled["errorMessage"] and "inside the gateway" not in polled["errorMessage"]
    assert platform.server.token_requests == []


async def test_a_provider_bug_still_ends_the_connection(api, org, platform):
    class Broken(StandInProvider):
        auth = OAuth2Spec(authorize_url=platform.base_url + "/authorize", token_url=platform.base_url + "/token", pkce=True)

        async def exchange_code(self, ctx, **kwargs):
            raise KeyError("access_token")

    install(api.runtime, Broken())
    await allow(api, org.secret)
    connection_id, landed = await connect(api, org.secret)
    assert landed["error"] == ["EXCHANGE_FAILED"]
    assert (await poll(api, org.secret, connection_id))["errorMessage"] == "The exchange failed inside the gateway."


async def test_a_state_returning_to_another_providers_callback_fails(api, org, platform, standin):
    await allow(api, org.secret)
    started = await start(api, org.secret)
    location = await consent(api, started["authorizeUrl"])
    answer = await api.http.get(location.removeprefix(api.runtime.settings.base_url).replace("/standin/", "/sandbox/"))
    assert "error=STATE_INVALID" in answer.headers["location"]
    assert platform.server.token_requests == []


async def test_a_state_started_by_one_org_finishes_only_for_that_org(api, org, platform, standin):
    other = await make_org_with_key(api.runtime, name="Other")
    await allow(api, org.secret)
    await allow(api, other.secret, ["https://other.example/back"])
    started = await start(api, org.secret)
    connection_id = started["connection"]["id"]
    # Org B neither sees A's handshake nor can it start one toward A's redirect URI.
    assert await poll(api, other.secret, connection_id) is None
    node = await api.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": connection_id}, key=other.secret)
    assert node["data"]["node"] is None
    assert (await start(api, other.secret, APP_URI))["userErrors"][0]["code"] == "REDIRECT_URI_NOT_ALLOWED"
    answer = await callback(api, await consent(api, started["authorizeUrl"]))
    assert answer.headers["location"].startswith(APP_URI + "?")
    account_id = (await poll(api, org.secret, connection_id))["account"]["id"]
    async with api.runtime.database.read() as session:
        assert (await session.get(Account, account_id)).organization_id == org.organization_id
    other_accounts = await api.graphql("{ accounts { nodes { id } } }", key=other.secret)
    assert other_accounts["data"]["accounts"]["nodes"] == []


async def test_redirect_uris_must_be_allowed_exactly(api, org, platform, standin):
    assert (await start(api, org.secret))["userErrors"][0]["code"] == "REDIRECT_URI_NOT_ALLOWED"
    await allow(api, org.secret, [APP_URI, "http://localhost:3000/cb", "http://127.0.0.1:5173/cb"])
    refused = [
        "https://app.example.com/connected/extra",
        "https://app.example.com:8443/connected",
        "http://app.example.com/connected",
        "https://evil.example/connected",
        "https://app.example.com.evil.example/connected",
        "http://localhost:3001/cb",
    ]
    for uri in refused:
        errors = (await start(api, org.secret, uri))["userErrors"]
        assert errors[0]["code"] in ("REDIRECT_URI_NOT_ALLOWED", "REDIRECT_URI_INVALID"), uri
        assert errors[0]["field"] == ["redirectUri"]
    for uri in ["https://user:pw@app.example.com/connected", "https://app.example.com/connected#x", "javascript:alert(1)", "/connected"]:
        assert (await start(api, org.secret, uri))["userErrors"][0]["code"] == "REDIRECT_URI_INVALID", uri
    assert await _count(api, Connection) == 0
    # The default port may be spelled out, and the caller's own query is kept.
    started = await start(api, org.secret, "https://APP.example.com:443/connected?next=%2Fsettings&status=x")
    assert started["userErrors"] == []
    answer = await callback(api, await consent(api, started["authorizeUrl"]))
    landed = parse_qs(urlsplit(answer.headers["location"]).query)
    assert landed == {"next": ["/settings"], "connection_id": [started["connection"]["id"]], "status": ["succeeded"]}
    loopback = await start(api, org.secret, "http://localhost:3000/cb")
    assert loopback["userErrors"] == []


async def test_setting_redirect_uris_checks_each_and_needs_org_admin(api, org):
    payload = await allow(api, org.secret, [APP_URI, "http://app.example.com/cb", "https://a.example/cb?x=1", "https://a.example/cb#f"])
    assert payload["redirectUris"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["redirectUris", "1"], "REDIRECT_URI_INVALID"),
        (["redirectUris", "2"], "REDIRECT_URI_INVALID"),
        (["redirectUris", "3"], "REDIRECT_URI_INVALID"),
    ]
    assert (await allow(api, org.secret, [f"https://a.example/{i}" for i in range(21)]))["userErrors"][0]["code"] == "TOO_MANY_REDIRECT_URIS"
    assert (await allow(api, org.secret, [APP_URI, APP_URI, "http://[::1]:8080/cb"]))["redirectUris"] == [APP_URI, "http://[::1]:8080/cb"]
    listed = await api.graphql("{ oauthRedirectUris }", key=org.secret)
    assert listed["data"]["oauthRedirectUris"] == [APP_URI, "http://[::1]:8080/cb"]
    limited = await make_org_with_key(api.runtime, name="Limited", scopes=["accounts:*", "org:read"])
    denied = await api.graphql("mutation { setOAuthRedirectUris(input: {redirectUris: []}) { redirectUris } }", key=limited.secret)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_missing_client_settings_are_named_and_the_provider_still_listed(api, org, platform):
    class Unconfigured(StandInProvider):
        id = "other-net"
        auth = OAuth2Spec(authorize_url=platform.base_url + "/authorize", token_url=platform.base_url + "/token")

    install(api.runtime, Unconfigured())
    await allow(api, org.secret)
    payload = await start(api, org.secret, provider="other-net")
    [error] = payload["userErrors"]
    assert error["code"] == "OAUTH_NOT_CONFIGURED" and error["field"] == ["provider"]
    assert "SOCIALGATE_OAUTH_OTHER_NET_CLIENT_ID" in error["message"] and "SOCIALGATE_OAUTH_OTHER_NET_CLIENT_SECRET" in error["message"]
    assert payload["connection"] is None and await _count(api, Connection) == 0
    both = await start(api, org.secret, "https://elsewhere.example/x", provider="other-net")
    assert [e["code"] for e in both["userErrors"]] == ["OAUTH_NOT_CONFIGURED", "REDIRECT_URI_NOT_ALLOWED"]
    listed = await api.graphql("{ providers { id configured auth { kind oauth2 { callbackUrl pkce } } } }", key=org.secret)
    providers = {p["id"]: p for p in listed["data"]["providers"]}
    assert providers["other-net"]["configured"] is False
    assert providers["other-net"]["auth"]["oauth2"]["callbackUrl"] == "http://127.0.0.1:8000/oauth/other-net/callback"
    assert providers["sandbox"]["configured"] is True and providers["sandbox"]["auth"]["oauth2"] is None


def test_client_settings_come_from_the_environment_and_hide_the_secret(monkeypatch):
    monkeypatch.setenv("SOCIALGATE_OAUTH_MY_NET_CLIENT_ID", "the-id")
    half = load_settings()
    assert half.oauth_client("my-net") is None
    assert half.missing_oauth_variables("my-net") == ["SOCIALGATE_OAUTH_MY_NET_CLIENT_SECRET"]
    monkeypatch.setenv("SOCIALGATE_OAUTH_MY_NET_CLIENT_SECRET", "s3cret-value")
    settings = load_settings()
    client = settings.oauth_client("my-net")
    assert (client.client_id, client.client_secret) == ("the-id", "s3cret-value")
    assert settings.missing_oauth_variables("my-net") == []
    assert "s3cret-value" not in repr(settings) + repr(client) + str(settings.model_dump())


async def test_start_refuses_unknown_and_non_oauth_providers(api, org):
    await allow(api, org.secret)
    assert (await start(api, org.secret, provider="nope"))["userErrors"][0]["code"] == "UNKNOWN_PROVIDER"
    assert (await start(api, org.secret, provider="sandbox"))["userErrors"][0]["code"] == "OAUTH_NOT_SUPPORTED"


async def test_scopes_guard_starting_and_polling(api, org, platform, standin):
    await allow(api, org.secret)
    started = await start(api, org.secret)
    reader = await make_org_with_key(api.runtime, name="Reader", scopes=["accounts:read"])
    body = await api.graphql(
        'mutation { startConnection(input: {provider: "standin", redirectUri: "https://app.example.com/connected"}) { authorizeUrl } }',
        key=reader.secret,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    blind = await make_org_with_key(api.runtime, name="Blind", scopes=["posts:read"])
    polled = await api.graphql("query($id: ID!) { connection(id: $id) { id } }", {"id": started["connection"]["id"]}, key=blind.secret)
    assert polled["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_access_log_lines_of_callbacks_keep_no_code_or_state():
    import logging

    from gateway.core.logs import HideCallbackQueries, configure_logging

    def access_line(path: str) -> str:
        record = logging.makeLogRecord(
            {"name": "uvicorn.access", "msg": '%s - "%s %s HTTP/%s" %d', "args": ("127.0.0.1:5000", "GET", path, "1.1", 303)}
        )
        HideCallbackQueries().filter(record)
        return record.getMessage()

    assert access_line("/oauth/x/callback?code=SECRETCODE&state=SECRETSTATE") == '127.0.0.1:5000 - "GET /oauth/x/callback HTTP/1.1" 303'
    assert access_line("/graphql?query=x") == '127.0.0.1:5000 - "GET /graphql?query=x HTTP/1.1" 303'
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    saved = (root.handlers[:], root.level, access.filters[:])
    try:
        configure_logging("INFO")
        configure_logging("INFO")
        assert sum(isinstance(f, HideCallbackQueries) for f in access.filters) == 1
    finally:
        root.handlers[:], access.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])


async def test_handshakes_long_over_are_purged_and_recent_ones_kept(api, org, platform, standin):
    from gateway.accounts.oauth import CONNECTION_RETENTION, purge_connections
    from gateway.engine.scheduler import Scheduler

    await allow(api, org.secret)
    old, recent = [(await start(api, org.secret))["connection"]["id"] for _ in range(2)]
    async with api.runtime.database.write() as session:
        await session.execute(update(Connection).where(Connection.id == old)
                              .values(expires_at=utcnow() - CONNECTION_RETENTION - timedelta(minutes=1)))
        await session.execute(update(Connection).where(Connection.id == recent)
                              .values(expires_at=utcnow() - CONNECTION_RETENTION + timedelta(minutes=1)))
    # Still readable until the purge: an expired one reads as failed.
    assert (await poll(api, org.secret, old))["errorCode"] == "STATE_EXPIRED"

    # The scheduler's housekeeping runs the purge (once an hour; its first sweep counts as due).
    await Scheduler(api.runtime).sweep()
    assert await _connection_row(api, old) is None
    assert (await _connection_row(api, recent)).status == "pending"
    async with api.runtime.database.write() as session:
        assert await purge_connections(session) == 0


async def test_a_connection_started_acting_in_a_child_belongs_to_that_child(api, platform, standin):
    """Checked in the sweep of issue 11.1: the handshake, its account and its polling stay in the
    organization acted in; the parent's own key (without the header) sees none of it."""
    from tests.oauth_flow import ALLOW, START

    parent = await make_org_with_key(api.runtime, name="Agency")
    created = await api.graphql('mutation { createOrganization(input: {name: "Client"}) { organization { id } } }', key=parent.secret)
    child_id = created["data"]["createOrganization"]["organization"]["id"]
    acting = {"X-Socialgate-Org": child_id}
    await api.graphql(ALLOW, {"uris": [APP_URI]}, key=parent.secret, headers=acting)
    refused = await start(api, parent.secret)  # the parent itself allowed no redirect URI
    assert refused["userErrors"][0]["code"] == "REDIRECT_URI_NOT_ALLOWED"
    body = await api.graphql(START, {"input": {"provider": standin.id, "redirectUri": APP_URI}}, key=parent.secret, headers=acting)
    started = body["data"]["startConnection"]
    assert (await _connection_row(api, started["connection"]["id"])).organization_id == child_id
    assert await poll(api, parent.secret, started["connection"]["id"]) is None
    await callback(api, await consent(api, started["authorizeUrl"]))
    polled = await api.graphql("query($id: ID!) { connection(id: $id) { account { id } } }", {"id": started["connection"]["id"]}, key=parent.secret, headers=acting)
    account_id = polled["data"]["connection"]["account"]["id"]
    async with api.runtime.database.read() as session:
        assert (await session.get(Account, account_id)).organization_id == child_id
    assert (await api.graphql("{ accounts { nodes { id } } }", key=parent.secret))["data"]["accounts"]["nodes"] == []


async def test_outbound_request_urls_never_reach_the_logs(capsys):
    """httpx logs each request's URL at INFO; token calls that carry secrets in the query must not show."""
    import logging

    import httpx

    from gateway.core.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in ("httpx", "httpcore")})
    try:
        configure_logging("INFO")
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"access_token": "x"}))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("https://graph.facebook.com/v21.0/oauth/access_token?grant_type=fb_exchange_token&client_secret=SECRET123")
        logging.getLogger("socialgate.test").info("a line of our own")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    logged = capsys.readouterr().err
    assert "a line of our own" in logged
    assert "SECRET123" not in logged and "graph.facebook.com" not in logged
