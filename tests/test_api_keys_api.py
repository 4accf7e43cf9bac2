from datetime import timedelta

from sqlalchemy import select

from gateway.auth.keys import authenticate
from gateway.core.clock import utcnow
from gateway.storage.models import ApiKey
from tests.conftest import make_org_with_key

CREATE = """mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { apiKey { id scopes createdByKeyId } secret userErrors { field code message } }
}"""


async def test_child_key_scopes_stay_within_the_parent(api):
    parent = await make_org_with_key(api.runtime, scopes=["keys:write", "posts:*", "org:admin"])
    ok = await api.graphql(CREATE, {"input": {"scopes": ["posts:read", "posts:write"], "name": "ci"}}, key=parent.secret)
    payload = ok["data"]["createApiKey"]
    assert payload["userErrors"] == []
    assert payload["secret"].startswith("sg_live_")
    assert payload["apiKey"]["scopes"] == ["posts:read", "posts:write"]
    assert payload["apiKey"]["createdByKeyId"] == parent.api_key_id
    for scopes, code in [
        (["accounts:read"], "SCOPE_NOT_HELD"),
        (["*"], "SCOPE_NOT_DELEGABLE"),
        (["org:admin"], "SCOPE_NOT_DELEGABLE"),
        (["org:*"], "SCOPE_NOT_DELEGABLE"),
        (["posts:fly"], "INVALID_SCOPE"),
        ([], "SCOPES_REQUIRED"),
    ]:
        refused = await api.graphql(CREATE, {"input": {"scopes": scopes}}, key=parent.secret)
        assert refused["data"]["createApiKey"]["userErrors"][0]["code"] == code, scopes
        assert refused["data"]["createApiKey"]["secret"] is None
    async with api.runtime.database.read() as session:
        assert len((await session.execute(select(ApiKey))).scalars().all()) == 2


async def test_secret_never_appears_in_listings(api, org):
    created = await api.graphql(CREATE, {"input": {"scopes": ["posts:read"]}}, key=org.secret)
    secret = created["data"]["createApiKey"]["secret"]
    listing = await api.http.post(
        "/graphql",
        json={"query": "{ apiKeys(first: 10) { nodes { id name scopes lastUsedAt } } }"},
        headers={"Authorization": f"Bearer {org.secret}"},
    )
    assert secret not in listing.text and org.secret not in listing.text
    assert len(listing.json()["data"]["apiKeys"]["nodes"]) == 2


async def test_rotate_keeps_the_old_secret_for_24_hours(api, org):
    rotated = await api.graphql(
        "mutation($id: ID!) { rotateApiKey(input: {id: $id}) { apiKey { id scopes rotatedFromId } secret userErrors { code } } }",
        {"id": org.api_key_id},
        key=org.secret,
    )
    payload = rotated["data"]["rotateApiKey"]
    assert payload["apiKey"]["rotatedFromId"] == org.api_key_id
    new_secret = payload["secret"]
    async with api.runtime.database.read() as session:
        assert (await authenticate(session, new_secret)).api_key_id == payload["apiKey"]["id"]
        assert (await authenticate(session, org.secret)).api_key_id == org.api_key_id
        old = await session.get(ApiKey, org.api_key_id)
        assert timedelta(hours=23, minutes=59) < old.expires_at - utcnow() <= timedelta(hours=24)
        later = utcnow() + timedelta(hours=24, seconds=1)
        try:
            await authenticate(session, org.secret, now=later)
        except Exception as exc:  # noqa: BLE001 - asserting the type below
            assert type(exc).__name__ == "Unauthenticated"
        else:
            raise AssertionError("the old secret outlived its grace period")
        assert (await authenticate(session, new_secret, now=later)).api_key_id == payload["apiKey"]["id"]


async def test_revoke(api, org):
    from datetime import datetime

    from gateway.core.clock import utcnow

    created = await api.graphql(CREATE, {"input": {"scopes": ["posts:read"]}}, key=org.secret)
    child = created["data"]["createApiKey"]
    before = utcnow()
    revoked = await api.graphql(
        "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revokedAt } userErrors { code } } }",
        {"id": child["apiKey"]["id"]},
        key=org.secret,
    )
    assert before <= datetime.fromisoformat(revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"]) <= utcnow()
    body = await api.graphql("{ viewer { apiKeyId } }", key=child["secret"])
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_keys_of_another_org_are_invisible(api, org):
    other = await make_org_with_key(api.runtime, name="Other")
    for mutation in ("rotateApiKey", "revokeApiKey"):
        body = await api.graphql(
            f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ apiKey {{ id }} userErrors {{ code }} }} }}",
            {"id": other.api_key_id},
            key=org.secret,
        )
        assert body["data"][mutation] == {"apiKey": None, "userErrors": [{"code": "API_KEY_NOT_FOUND"}]}
    node = await api.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": other.api_key_id}, key=org.secret)
    assert node["data"]["node"] is None
    still = await api.graphql("{ viewer { apiKeyId } }", key=other.secret)
    assert still["data"]["viewer"]["apiKeyId"] == other.api_key_id


async def test_idempotent_create_replays_without_the_secret(api, org):
    variables = {"input": {"scopes": ["posts:read"], "idempotencyKey": "abc"}}
    first = (await api.graphql(CREATE, variables, key=org.secret))["data"]["createApiKey"]
    again = (await api.graphql(CREATE, variables, key=org.secret))["data"]["createApiKey"]
    assert again["apiKey"]["id"] == first["apiKey"]["id"]
    assert first["secret"] and again["secret"] is None
    reused = await api.graphql(CREATE, {"input": {"scopes": ["posts:write"], "idempotencyKey": "abc"}}, key=org.secret)
    assert reused["data"]["createApiKey"]["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


ROTATE = "mutation($id: ID!) { rotateApiKey(input: {id: $id}) { apiKey { id } secret userErrors { code } } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revokedAt } userErrors { code } } }"


async def _mint(api, organization_id, scopes):
    from gateway.auth.keys import mint_key

    async with api.runtime.database.write() as session:
        return await mint_key(session, organization_id, scopes)


async def _key_row(api, key_id):
    async with api.runtime.database.read() as session:
        return await session.get(ApiKey, key_id)


async def test_a_keys_write_key_cannot_rotate_or_revoke_an_admin_key(api, org):
    """Issue 11.1: keys:write alone once rotated an admin key into a fresh `*` secret."""
    manager = (await _mint(api, org.organization_id, ["keys:write", "keys:read"])).secret
    for mutation in (ROTATE, REVOKE):
        body = await api.graphql(mutation, {"id": org.api_key_id}, key=manager)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "sg_live_" not in str(body)
    admin = await _key_row(api, org.api_key_id)
    assert admin.expires_at is None and admin.revoked_at is None
    async with api.runtime.database.read() as session:
        assert len((await session.execute(select(ApiKey))).scalars().all()) == 2  # nothing minted
    still = await api.graphql("{ viewer { apiKeyId } }", key=org.secret)
    assert still["data"]["viewer"]["apiKeyId"] == org.api_key_id


async def test_acting_on_a_key_needs_every_scope_it_holds(api, org):
    manager = (await _mint(api, org.organization_id, ["keys:write", "posts:read"])).secret
    wider = (await _mint(api, org.organization_id, ["posts:read", "posts:write"])).key.id
    org_admin_only = (await _mint(api, org.organization_id, ["org:admin"])).key.id
    for target in (wider, org_admin_only):
        for mutation in (ROTATE, REVOKE):
            body = await api.graphql(mutation, {"id": target}, key=manager)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (target, mutation)
    # Within its own scopes it may act: on a narrower key, and on itself.
    narrower = (await _mint(api, org.organization_id, ["posts:read"])).key.id
    rotated = (await api.graphql(ROTATE, {"id": narrower}, key=manager))["data"]["rotateApiKey"]
    assert rotated["userErrors"] == [] and rotated["secret"].startswith("sg_live_")
    revoked = (await api.graphql(REVOKE, {"id": narrower}, key=manager))["data"]["revokeApiKey"]
    assert revoked["userErrors"] == [] and revoked["apiKey"]["revokedAt"]


async def test_an_org_admin_key_yields_only_to_an_org_admin_key(api, org):
    admin = await _mint(api, org.organization_id, ["org:admin", "keys:write"])
    other_admin = (await _mint(api, org.organization_id, ["org:admin"])).key.id
    rotated = (await api.graphql(ROTATE, {"id": other_admin}, key=admin.secret))["data"]["rotateApiKey"]
    assert rotated["userErrors"] == [] and rotated["secret"]
    # But an org:admin key does not cover a `*` key.
    body = await api.graphql(REVOKE, {"id": org.api_key_id}, key=admin.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_rotation_does_not_undo_a_key_kill_switch(api, org):
    from gateway.auth.keys import set_key_disabled

    killed = await _mint(api, org.organization_id, ["posts:read"])
    async with api.runtime.database.write() as session:
        await set_key_disabled(session, killed.key.id, True)
    body = (await api.graphql(ROTATE, {"id": killed.key.id}, key=org.secret))["data"]["rotateApiKey"]
    assert body == {"apiKey": None, "secret": None, "userErrors": [{"code": "API_KEY_DISABLED"}]}
    assert (await _key_row(api, killed.key.id)).expires_at is None


async def test_create_never_mints_a_scope_the_caller_lacks(api, org):
    """Checked in the sweep: a wildcard needs a wildcard, and acting in a child changes nothing."""
    holder = (await _mint(api, org.organization_id, ["keys:write", "posts:read", "posts:write", "posts:publish", "posts:approve", "ads:write:*"])).secret
    for scopes, code in [(["posts:*"], "SCOPE_NOT_HELD"), (["ads:*"], "SCOPE_NOT_HELD"), (["*"], "SCOPE_NOT_DELEGABLE")]:
        refused = await api.graphql(CREATE, {"input": {"scopes": scopes}}, key=holder)
        assert refused["data"]["createApiKey"]["userErrors"][0]["code"] == code, scopes
    ok = await api.graphql(CREATE, {"input": {"scopes": ["ads:write:budgets", "posts:read"]}}, key=holder)
    assert ok["data"]["createApiKey"]["userErrors"] == []
    # A parent key acting in its child mints there, but still only within its own scopes.
    parent = await _mint(api, org.organization_id, ["org:admin", "keys:write", "posts:read"])
    child = await api.graphql('mutation { createOrganization(input: {name: "C"}) { organization { id } } }', key=parent.secret)
    child_id = child["data"]["createOrganization"]["organization"]["id"]
    acting = {"X-Socialgate-Org": child_id}
    for scopes in (["posts:write"], ["org:admin"], ["keys:write", "org:read"]):
        refused = await api.graphql(CREATE, {"input": {"scopes": scopes}}, key=parent.secret, headers=acting)
        assert refused["data"]["createApiKey"]["secret"] is None, scopes
    minted = await api.graphql(CREATE, {"input": {"scopes": ["posts:read"]}}, key=parent.secret, headers=acting)
    row = await _key_row(api, minted["data"]["createApiKey"]["apiKey"]["id"])
    assert row.organization_id == child_id and row.scopes == ["posts:read"]
