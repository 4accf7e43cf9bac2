"""Kill switches over GraphQL (issue 17, point 7): per key and per child organization, for org:admin keys, audited."""

from __future__ import annotations

from tests.conftest import make_org_with_key

KEY_SWITCH = """mutation($id: ID!, $on: Boolean!) { setApiKeyKillSwitch(input: {id: $id, on: $on}) {
  apiKey { id disabled } userErrors { field code } } }"""
ORG_SWITCH = """mutation($id: ID!, $on: Boolean!) { setOrganizationKillSwitch(input: {id: $id, on: $on}) {
  organization { id killSwitch } userErrors { field code } } }"""
CREATE_ORG = """mutation($name: String!) { createOrganization(input: {name: $name}) { organization { id } } }"""
CREATE_KEY = """mutation { createApiKey(input: {scopes: ["posts:read"]}) { apiKey { id } secret } }"""
WHO = "{ viewer { apiKeyId } }"
AUDIT = "{ auditLog { nodes { operation objectIds outcome actorKeyId organizationId } } }"


async def _tree(api):
    """A parent with an org:admin key, a child it made, and a key of each."""
    parent = await make_org_with_key(api.runtime, name="Agency", scopes=["*"])
    child_id = (await api.graphql(CREATE_ORG, {"name": "Client"}, key=parent.secret))["data"]["createOrganization"]["organization"]["id"]
    parent_key = (await api.graphql(CREATE_KEY, key=parent.secret))["data"]["createApiKey"]
    child_key = (await api.graphql(CREATE_KEY, key=parent.secret, headers={"X-Socialgate-Org": child_id}))["data"]["createApiKey"]
    return parent, child_id, parent_key, child_key


async def _refused(api, secret: str) -> bool:
    body = await api.graphql(WHO, key=secret)
    return body.get("errors", [{}])[0].get("extensions", {}).get("code") == "FORBIDDEN"


async def test_a_parent_switches_off_a_key_of_its_own_and_of_a_child_and_back_on(api):
    parent, _, parent_key, child_key = await _tree(api)
    for key in (parent_key, child_key):
        off = (await api.graphql(KEY_SWITCH, {"id": key["apiKey"]["id"], "on": True}, key=parent.secret))["data"]["setApiKeyKillSwitch"]
        assert off == {"apiKey": {"id": key["apiKey"]["id"], "disabled": True}, "userErrors": []}
        assert await _refused(api, key["secret"])
        await api.graphql(KEY_SWITCH, {"id": key["apiKey"]["id"], "on": False}, key=parent.secret)
        assert not await _refused(api, key["secret"])


async def test_a_child_organizations_switch_refuses_all_its_keys(api):
    parent, child_id, parent_key, child_key = await _tree(api)
    off = (await api.graphql(ORG_SWITCH, {"id": child_id, "on": True}, key=parent.secret))["data"]["setOrganizationKillSwitch"]
    assert off == {"organization": {"id": child_id, "killSwitch": True}, "userErrors": []}
    assert await _refused(api, child_key["secret"])
    assert not await _refused(api, parent_key["secret"])  # the parent's own keys stand
    await api.graphql(ORG_SWITCH, {"id": child_id, "on": False}, key=parent.secret)
    assert not await _refused(api, child_key["secret"])


async def test_the_reach_is_the_callers_tree_only(api):
    parent, child_id, _, _ = await _tree(api)
    stranger = await make_org_with_key(api.runtime, name="Stranger", scopes=["*"])
    own_key = (await api.graphql(KEY_SWITCH, {"id": parent.api_key_id, "on": True}, key=parent.secret))["data"]["setApiKeyKillSwitch"]
    assert own_key["userErrors"] == [{"field": ["id"], "code": "CANNOT_KILL_OWN_KEY"}]
    own_org = (await api.graphql(ORG_SWITCH, {"id": parent.organization_id, "on": True}, key=parent.secret))["data"]
    assert own_org["setOrganizationKillSwitch"]["userErrors"][0]["code"] == "ORGANIZATION_NOT_FOUND"
    for mutation, target, code in [(KEY_SWITCH, parent.api_key_id, "API_KEY_NOT_FOUND"), (ORG_SWITCH, child_id, "ORGANIZATION_NOT_FOUND"),
                                   (KEY_SWITCH, "not-an-id", "API_KEY_NOT_FOUND")]:
        body = await api.graphql(mutation, {"id": target, "on": True}, key=stranger.secret)
        assert [e["code"] for e in next(iter(body["data"].values()))["userErrors"]] == [code]
    assert not await _refused(api, parent.secret)


async def test_kill_switches_need_org_admin(api):
    parent, child_id, _, _ = await _tree(api)
    writer = await make_org_with_key(api.runtime, name="Writer", scopes=["keys:*", "org:read"])
    body = await api.graphql(ORG_SWITCH, {"id": child_id, "on": True}, key=writer.secret)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_every_switch_is_in_the_audit_log(api):
    parent, child_id, _, child_key = await _tree(api)
    await api.graphql(KEY_SWITCH, {"id": child_key["apiKey"]["id"], "on": True}, key=parent.secret)
    await api.graphql(ORG_SWITCH, {"id": child_id, "on": True}, key=parent.secret)
    entries = (await api.graphql(AUDIT, key=parent.secret))["data"]["auditLog"]["nodes"]
    assert entries[:2] == [
        {"operation": "setOrganizationKillSwitch", "objectIds": [child_id], "outcome": "OK",
         "actorKeyId": parent.api_key_id, "organizationId": parent.organization_id},
        {"operation": "setApiKeyKillSwitch", "objectIds": [child_key["apiKey"]["id"]], "outcome": "OK",
         "actorKeyId": parent.api_key_id, "organizationId": parent.organization_id},
    ]
