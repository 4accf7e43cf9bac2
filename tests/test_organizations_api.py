import pytest
from sqlalchemy import func, select

from gateway.storage.models import Organization
from tests.conftest import make_org_with_key

CREATE = """mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) { organization { id name status metadata parent { id } } userErrors { field code message } }
}"""
UPDATE = """mutation($input: UpdateOrganizationInput!) {
  updateOrganization(input: $input) { organization { id name metadata } userErrors { field code message } }
}"""
STATUS = """mutation($id: ID!) {
  suspend: suspendOrganization(input: {id: $id}) { organization { status } userErrors { code } }
}"""


async def _create_child(api, key, name="Child", **extra):
    body = await api.graphql(CREATE, {"input": {"name": name, **extra}}, key=key)
    return body["data"]["createOrganization"]


async def _org_count(api) -> int:
    async with api.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(Organization))).scalar()


async def test_create_child_and_act_inside_it(api):
    parent = await make_org_with_key(api.runtime, scopes=["org:admin", "org:read", "keys:*"])
    payload = await _create_child(api, parent.secret, metadata={"plan": "pro"})
    assert payload["userErrors"] == []
    child = payload["organization"]
    assert child["parent"] == {"id": parent.organization_id}
    assert child["metadata"] == {"plan": "pro"}

    viewer = await api.graphql(
        "{ viewer { organization { id } parentOrganization { id } actingFromOrganization } }",
        key=parent.secret,
        headers={"X-Socialgate-Org": child["id"]},
    )
    assert viewer["data"]["viewer"] == {
        "organization": {"id": child["id"]},
        "parentOrganization": {"id": parent.organization_id},
        "actingFromOrganization": parent.organization_id,
    }
    # One level deep: acting in the child, creating a grandchild is refused.
    nested = await _create_child(api, parent.secret, name="Grandchild")
    assert nested["userErrors"] == []
    grandchild = await api.graphql(
        CREATE, {"input": {"name": "Too deep"}}, key=parent.secret, headers={"X-Socialgate-Org": child["id"]}
    )
    assert grandchild["data"]["createOrganization"]["userErrors"][0]["code"] == "NESTING_TOO_DEEP"


async def test_acting_as_needs_org_admin_and_a_direct_child(api):
    parent = await make_org_with_key(api.runtime, scopes=["org:admin"])
    child_id = (await _create_child(api, parent.secret))["organization"]["id"]
    reader = await make_org_with_key(api.runtime, name="Other", scopes=["org:read"])
    stranger = await make_org_with_key(api.runtime, name="Stranger", scopes=["org:admin"])
    for key, org_id in [(reader.secret, child_id), (stranger.secret, child_id), (parent.secret, stranger.organization_id)]:
        body = await api.graphql("{ viewer { apiKeyId } }", key=key, headers={"X-Socialgate-Org": org_id})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_create_needs_org_admin(api, org):
    limited = await make_org_with_key(api.runtime, scopes=["posts:*"])
    body = await api.graphql(CREATE, {"input": {"name": "X"}}, key=limited.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _org_count(api) == 2


@pytest.mark.parametrize(
    ("name", "metadata", "code"),
    [
        ("", None, "NAME_REQUIRED"),
        ("x" * 201, None, "NAME_TOO_LONG"),
        ("ok", {"k" * 41: "v"}, "METADATA_KEY_INVALID"),
        ("ok", {"k": "v" * 501}, "METADATA_VALUE_TOO_LONG"),
        ("ok", {"k": 5}, "METADATA_VALUE_NOT_STRING"),
        ("ok", {f"k{i}": "v" for i in range(51)}, "METADATA_TOO_MANY_KEYS"),
        ("ok", ["not", "an", "object"], "METADATA_NOT_OBJECT"),
    ],
)
async def test_bad_input_is_a_user_error_and_changes_nothing(api, org, name, metadata, code):
    before = await _org_count(api)
    payload = await _create_child(api, org.secret, name=name, metadata=metadata)
    assert payload["organization"] is None
    assert payload["userErrors"][0]["code"] == code
    assert await _org_count(api) == before


async def test_metadata_merges_the_stripe_way(api, org):
    child = (await _create_child(api, org.secret, metadata={"a": "1", "b": "2"}))["organization"]
    merged = await api.graphql(UPDATE, {"input": {"id": child["id"], "metadata": {"b": "", "c": "3"}}}, key=org.secret)
    assert merged["data"]["updateOrganization"]["organization"]["metadata"] == {"a": "1", "c": "3"}
    renamed = await api.graphql(UPDATE, {"input": {"id": child["id"], "name": "Renamed"}}, key=org.secret)
    assert renamed["data"]["updateOrganization"]["organization"] == {"id": child["id"], "name": "Renamed", "metadata": {"a": "1", "c": "3"}}
    cleared = await api.graphql(UPDATE, {"input": {"id": child["id"], "metadata": None}}, key=org.secret)
    assert cleared["data"]["updateOrganization"]["organization"]["metadata"] == {}
    too_many = await api.graphql(
        UPDATE, {"input": {"id": child["id"], "metadata": {f"k{i}": "v" for i in range(51)}}}, key=org.secret
    )
    assert too_many["data"]["updateOrganization"]["userErrors"][0]["code"] == "METADATA_TOO_MANY_KEYS"


async def test_suspend_resume_archive_a_child(api):
    parent = await make_org_with_key(api.runtime, scopes=["org:admin"])
    child_id = (await _create_child(api, parent.secret))["organization"]["id"]
    # A key the parent minted inside the child stops working while the child is suspended.
    key = await api.graphql(
        'mutation { createApiKey(input: {scopes: ["posts:read"]}) { secret userErrors { code } } }',
        key=parent.secret,
        headers={"X-Socialgate-Org": child_id},
    )
    assert key["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # parent lacks keys:write
    suspended = await api.graphql(STATUS, {"id": child_id}, key=parent.secret)
    assert suspended["data"]["suspend"] == {"organization": {"status": "suspended"}, "userErrors": []}
    acting = await api.graphql("{ viewer { apiKeyId } }", key=parent.secret, headers={"X-Socialgate-Org": child_id})
    assert acting["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    resumed = await api.graphql(
        "mutation($id: ID!) { resumeOrganization(input: {id: $id}) { organization { status } } }", {"id": child_id}, key=parent.secret
    )
    assert resumed["data"]["resumeOrganization"]["organization"]["status"] == "active"
    archived = await api.graphql(
        "mutation($id: ID!) { archiveOrganization(input: {id: $id}) { organization { status } } }", {"id": child_id}, key=parent.secret
    )
    assert archived["data"]["archiveOrganization"]["organization"]["status"] == "archived"
    back = await api.graphql(
        "mutation($id: ID!) { resumeOrganization(input: {id: $id}) { userErrors { code } } }", {"id": child_id}, key=parent.secret
    )
    assert back["data"]["resumeOrganization"]["userErrors"][0]["code"] == "INVALID_STATUS_TRANSITION"
    itself = await api.graphql(STATUS, {"id": parent.organization_id}, key=parent.secret)
    assert itself["data"]["suspend"]["userErrors"][0]["code"] == "ORGANIZATION_NOT_FOUND"


async def test_suspended_org_keys_get_forbidden(api):
    parent = await make_org_with_key(api.runtime, scopes=["org:admin", "keys:write", "org:read"])
    child_id = (await _create_child(api, parent.secret))["organization"]["id"]
    minted = await api.graphql(
        'mutation { createApiKey(input: {scopes: ["org:read"]}) { secret } }',
        key=parent.secret,
        headers={"X-Socialgate-Org": child_id},
    )
    child_secret = minted["data"]["createApiKey"]["secret"]
    ok = await api.graphql("{ viewer { organization { id } } }", key=child_secret)
    assert ok["data"]["viewer"]["organization"]["id"] == child_id
    await api.graphql(STATUS, {"id": child_id}, key=parent.secret)
    refused = await api.graphql("{ viewer { apiKeyId } }", key=child_secret)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_children_connection_and_node(api, org):
    ids = [(await _create_child(api, org.secret, name=f"C{i}"))["organization"]["id"] for i in range(3)]
    body = await api.graphql(
        "query($id: ID!) { node(id: $id) { ... on Organization { children(first: 2) { nodes { id } pageInfo { hasNextPage endCursor } } } } }",
        {"id": org.organization_id},
        key=org.secret,
    )
    children = body["data"]["node"]["children"]
    assert [n["id"] for n in children["nodes"]] == ids[::-1][:2]
    assert children["pageInfo"]["hasNextPage"] is True


async def test_a_parent_kill_switch_refuses_its_childrens_keys(api):
    """Issue 11.10: the kill switch of a parent organization stops the keys of its children too."""
    from gateway.orgs.organizations import set_kill_switch

    parent = await make_org_with_key(api.runtime, scopes=["org:admin", "keys:write", "org:read"])
    child_id = (await _create_child(api, parent.secret))["organization"]["id"]
    minted = await api.graphql(
        'mutation { createApiKey(input: {scopes: ["org:read"]}) { secret } }', key=parent.secret, headers={"X-Socialgate-Org": child_id}
    )
    child_secret = minted["data"]["createApiKey"]["secret"]
    async with api.runtime.database.write() as session:
        await set_kill_switch(session, parent.organization_id, True)
    for key in (child_secret, parent.secret):
        refused = await api.graphql("{ viewer { apiKeyId } }", key=key)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with api.runtime.database.write() as session:
        await set_kill_switch(session, parent.organization_id, False)
    back = await api.graphql("{ viewer { organization { id } } }", key=child_secret)
    assert back["data"]["viewer"]["organization"]["id"] == child_id
