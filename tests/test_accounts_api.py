from sqlalchemy import select

from gateway.storage.models import Account
from tests.conftest import make_org_with_key
from tests.on_disk import assert_not_on_disk
from tests.strict_provider import GOOD_TOKEN, install

CONNECT = """mutation($input: ConnectAccountInput!) {
  connectAccount(input: $input) { account { id provider handle externalId status accountType } userErrors { field code message } }
}"""


async def connect(api, key, provider="sandbox", credentials=None, **extra):
    body = await api.graphql(CONNECT, {"input": {"provider": provider, "credentials": credentials or {}, **extra}}, key=key)
    return body["data"]["connectAccount"]


async def test_providers_describe_limits_and_forms(api, org):
    install(api.runtime)
    body = await api.graphql(
        """{ providers { id name limits { maxTextLength textUnit maxMedia mediaKinds maxThreadParts }
             auth { kind credentialFields { name secret required } } settingFields { name type choices required } }
           unknown: provider(id: "nope") { id } }""",
        key=org.secret,
    )
    providers = {p["id"]: p for p in body["data"]["providers"]}
    assert "sandbox" in providers
    strict = providers["strict"]
    assert strict["limits"] == {"maxTextLength": 10, "textUnit": "graphemes", "maxMedia": 1, "mediaKinds": ["image"], "maxThreadParts": 1}
    assert strict["auth"]["kind"] == "credentials"
    assert {"name": "token", "secret": True, "required": True} in strict["auth"]["credentialFields"]
    assert strict["settingFields"] == [{"name": "board", "type": "choice", "choices": ["news", "fun"], "required": True}]
    assert body["data"]["unknown"] is None


async def test_connect_checks_with_the_platform_and_seals_credentials(api, org, tmp_path):
    install(api.runtime)
    payload = await connect(api, org.secret, "strict", {"token": GOOD_TOKEN, "channel": "news-bot"})
    assert payload["userErrors"] == []
    account = payload["account"]
    assert account == {
        "id": account["id"], "provider": "strict", "handle": "news-bot", "externalId": "U123", "status": "ACTIVE", "accountType": "channel",
    }
    async with api.runtime.database.read() as session:
        row = await session.get(Account, account["id"])
    assert GOOD_TOKEN.encode() not in row.credentials
    from gateway.accounts.accounts import open_credentials

    assert open_credentials(api.runtime.secret_key, row) == {"token": GOOD_TOKEN, "channel": "news-bot"}
    # The token is nowhere in the database file, the API's answers, or the logs.
    listing = await api.http.post(
        "/graphql", json={"query": "{ accounts { nodes { id handle metadata } } }"}, headers={"Authorization": f"Bearer {org.secret}"}
    )
    assert GOOD_TOKEN not in listing.text
    assert_not_on_disk(GOOD_TOKEN.encode(), tmp_path.glob("socialgate.db*"))


async def test_connect_errors_never_echo_secrets(api, org, caplog):
    install(api.runtime)
    cases = [
        ("nope", {"token": "x"}, "UNKNOWN_PROVIDER"),
        ("strict", {}, "CREDENTIAL_REQUIRED"),
        ("strict", {"token": "NOT-A-TOKEN-secretvalue"}, "CREDENTIAL_INVALID"),
        ("strict", {"token": "tok_wrong_secretvalue"}, "CREDENTIALS_REJECTED"),
        ("strict", {"token": GOOD_TOKEN, "extra": "x"}, "UNKNOWN_CREDENTIAL"),
    ]
    for provider, credentials, code in cases:
        payload = await connect(api, org.secret, provider, credentials)
        assert payload["account"] is None
        assert code in [e["code"] for e in payload["userErrors"]], payload
        assert "secretvalue" not in str(payload)
    assert "secretvalue" not in caplog.text
    bad_shape = await api.graphql(CONNECT, {"input": {"provider": "strict", "credentials": ["a"]}}, key=org.secret)
    assert bad_shape["data"]["connectAccount"]["userErrors"][0]["code"] == "CREDENTIALS_NOT_OBJECT"
    async with api.runtime.database.read() as session:
        assert (await session.execute(select(Account))).first() is None


async def test_disconnect_wipes_credentials_and_reconnect_reuses_the_row(api, org):
    first = (await connect(api, org.secret, credentials={"handle": "alice"}))["account"]
    gone = await api.graphql(
        "mutation($id: ID!) { disconnectAccount(input: {id: $id}) { account { status disconnectedAt } userErrors { code } } }",
        {"id": first["id"]},
        key=org.secret,
    )
    assert gone["data"]["disconnectAccount"]["account"]["status"] == "DISCONNECTED"
    async with api.runtime.database.read() as session:
        assert (await session.get(Account, first["id"])).credentials is None
    again = (await connect(api, org.secret, credentials={"handle": "alice"}))["account"]
    assert again["id"] == first["id"] and again["status"] == "ACTIVE"


async def test_update_and_filter_accounts(api, org):
    alice = (await connect(api, org.secret, credentials={"handle": "alice"}))["account"]
    await connect(api, org.secret, credentials={"handle": "bob"})
    updated = await api.graphql(
        'mutation($id: ID!) { updateAccount(input: {id: $id, displayName: "Alice", metadata: {team: "red"}}) { account { displayName metadata } } }',
        {"id": alice["id"]},
        key=org.secret,
    )
    assert updated["data"]["updateAccount"]["account"] == {"displayName": "Alice", "metadata": {"team": "red"}}
    await api.graphql("mutation($id: ID!) { disconnectAccount(input: {id: $id}) { account { id } } }", {"id": alice["id"]}, key=org.secret)
    active = await api.graphql('{ accounts(filter: {status: ACTIVE, provider: "sandbox"}) { nodes { handle } } }', key=org.secret)
    assert [n["handle"] for n in active["data"]["accounts"]["nodes"]] == ["bob"]
    bad = await api.graphql("{ accounts(filter: {status: SLEEPING}) { nodes { id } } }", key=org.secret)
    assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_accounts_are_isolated_between_orgs(api, org):
    other = await make_org_with_key(api.runtime, name="Other")
    theirs = (await connect(api, other.secret, credentials={"handle": "theirs"}))["account"]
    assert (await api.graphql("query($id: ID!) { account(id: $id) { id } }", {"id": theirs["id"]}, key=org.secret))["data"]["account"] is None
    assert (await api.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]}, key=org.secret))["data"]["node"] is None
    listing = await api.graphql("{ accounts { nodes { id } } }", key=org.secret)
    assert listing["data"]["accounts"]["nodes"] == [], listing
    for mutation in ("disconnectAccount", "updateAccount"):
        body = await api.graphql(
            f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ account {{ id }} userErrors {{ code }} }} }}", {"id": theirs["id"]}, key=org.secret
        )
        assert body["data"][mutation]["userErrors"] == [{"code": "ACCOUNT_NOT_FOUND"}]
    async with api.runtime.database.read() as session:
        assert (await session.get(Account, theirs["id"])).status == "active"


async def test_scopes_are_checked(api):
    reader = await make_org_with_key(api.runtime, scopes=["accounts:read"])
    body = await api.graphql(CONNECT, {"input": {"provider": "sandbox", "credentials": {}}}, key=reader.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    none = await make_org_with_key(api.runtime, name="None", scopes=["posts:read"])
    for query in ("{ accounts { nodes { id } } }", "{ providers { id } }"):
        assert (await api.graphql(query, key=none.secret))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_provider_calls_cannot_reach_private_addresses(api, org):
    """The runtime's shared client passes the SSRF guard: a form naming an internal host is refused."""
    import httpx

    from providers import AccountProfile, CredentialField, Provider, hookimpl

    class Internal(Provider):
        id = "internal"
        name = "Internal"
        auth = (CredentialField("server", "Server", kind="string"),)

        async def connect(self, ctx, credentials):
            await ctx.http.get(credentials["server"])
            return AccountProfile(external_id="1", handle="x")

        async def publish(self, ctx, request):
            raise AssertionError("not reached")

    from types import SimpleNamespace

    api.runtime.plugins.add("internal-plugin", SimpleNamespace(register_providers=hookimpl(lambda: [Internal()])))
    for server in ("http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/"):
        payload = await connect(api, org.secret, "internal", {"server": server})
        assert payload["account"] is None
        assert payload["userErrors"][0]["code"] == "URL_NOT_ALLOWED", payload
    assert isinstance(api.runtime.http, httpx.AsyncClient)


async def test_connect_account_tells_the_subscribers_of_every_process(api, org, settings):
    """account.connected is stored with the account, so another process's relay carries it (camelCase payload)."""
    import asyncio

    from gateway.runtime import Runtime

    other = Runtime(settings)  # a second gateway process on the same database
    await other.start()
    try:
        elsewhere = other.events.subscribe(org.organization_id)
        here = api.runtime.events.subscribe(org.organization_id)
        payload = await connect(api, org.secret, credentials={"handle": "everywhere"})
        account_id = payload["account"]["id"]
        await other.relay.relay_once()
        for subscription in (here, elsewhere):
            event = await asyncio.wait_for(subscription.next(), 5)
            assert event.kind == "account.connected"
            assert event.payload == {"accountId": account_id, "provider": "sandbox", "connectionId": None}
        await connect(api, org.secret, credentials={"handle": "everywhere"}, idempotencyKey="k1")
        await connect(api, org.secret, credentials={"handle": "everywhere"}, idempotencyKey="k1")  # a replay connects nothing
        await other.relay.relay_once()
        assert (await asyncio.wait_for(elsewhere.next(), 5)).kind == "account.connected"
        assert elsewhere.queue.empty()
    finally:
        await other.stop()
