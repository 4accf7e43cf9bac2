from datetime import timedelta

from sqlalchemy import select

from gateway.clock import utcnow
from gateway.keys import authenticate
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
    created = await api.graphql(CREATE, {"input": {"scopes": ["posts:read"]}}, key=org.secret)
    child = created["data"]["createApiKey"]
    revoked = await api.graphql(
        "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revokedAt } userErrors { code } } }",
        {"id": child["apiKey"]["id"]},
        key=org.secret,
    )
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
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
