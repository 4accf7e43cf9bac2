"""A parent organization, its children and their keys: nobody reaches past their own part of the tree.

Issue 11.3 (a child's key listed its siblings through its parent) and the sweep of issue 11.1:
every mutation that acts on an organization, a key or an account, tried from a child's key, a
sibling's key and a parent's key acting in a child (X-Socialgate-Org).
"""

from dataclasses import dataclass

import pytest

from gateway.auth.keys import mint_key
from gateway.storage.models import Account
from tests.conftest import make_org_with_key
from tests.test_accounts_api import connect

CREATE_ORG = 'mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } userErrors { code } } }'
UPDATE_ORG = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } userErrors { code } } }"
STATUS_MUTATIONS = ("suspendOrganization", "resumeOrganization", "archiveOrganization")
ORG_FIELDS = "id name metadata children(first: 10) { nodes { id name metadata } }"


@dataclass
class Tree:
    parent_id: str
    parent_secret: str
    child_id: str
    child_secret: str  # the child's own key: org:admin, org:read, keys:*, accounts:*
    sibling_id: str


async def _child(api, parent_secret: str, name: str, metadata: dict) -> str:
    body = await api.graphql(CREATE_ORG, {"input": {"name": name, "metadata": metadata}}, key=parent_secret)
    return body["data"]["createOrganization"]["organization"]["id"]


@pytest.fixture
async def tree(api) -> Tree:
    parent = await make_org_with_key(api.runtime, name="Agency")
    await api.graphql(UPDATE_ORG, {"input": {"id": parent.organization_id, "metadata": {"billing": "agency-only"}}}, key=parent.secret)
    child_id = await _child(api, parent.secret, "Client A", {"plan": "a-plan"})
    sibling_id = await _child(api, parent.secret, "Client B", {"plan": "b-confidential"})
    async with api.runtime.database.write() as session:
        child_key = await mint_key(session, child_id, ["org:admin", "org:read", "keys:*", "accounts:*"])
    return Tree(parent.organization_id, parent.secret, child_id, child_key.secret, sibling_id)


def _assert_nothing_of_the_others(response: dict) -> None:
    text = str(response)
    for leaked in ("Agency", "agency-only", "Client B", "b-confidential"):
        assert leaked not in text, leaked


async def test_a_child_key_does_not_see_its_parent_or_siblings(api, tree):
    """Issue 11.3: `viewer.parentOrganization.children` and `organization.parent.children` listed
    a sibling's name and metadata, though `organization(id: sibling)` was null."""
    viewer = await api.graphql(f"{{ viewer {{ organization {{ id }} parentOrganization {{ {ORG_FIELDS} }} }} }}", key=tree.child_secret)
    assert viewer["data"]["viewer"] == {"organization": {"id": tree.child_id}, "parentOrganization": None}
    for query in ("query($id: ID!) { organization(id: $id) { id parent { %s } } }", "query($id: ID!) { node(id: $id) { id ... on Organization { parent { %s } } } }"):
        body = await api.graphql(query % ORG_FIELDS, {"id": tree.child_id}, key=tree.child_secret)
        assert "errors" not in body
        assert list(body["data"].values())[0] == {"id": tree.child_id, "parent": None}
    for other in (tree.parent_id, tree.sibling_id):
        body = await api.graphql(f"query($id: ID!) {{ organization(id: $id) {{ {ORG_FIELDS} }} node(id: $id) {{ id }} }}", {"id": other}, key=tree.child_secret)
        assert body["data"] == {"organization": None, "node": None}
    own = await api.graphql(f"query($id: ID!) {{ organization(id: $id) {{ {ORG_FIELDS} }} }}", {"id": tree.child_id}, key=tree.child_secret)
    assert own["data"]["organization"]["metadata"] == {"plan": "a-plan"}
    assert own["data"]["organization"]["children"]["nodes"] == []
    for response in (viewer, own):
        _assert_nothing_of_the_others(response)


async def test_children_of_an_organization_the_caller_does_not_own_are_empty(api, tree):
    """The service refuses the listing itself, whichever field asked for it."""
    from gateway.auth.keys import Principal
    from gateway.core.pagination import PageRequest
    from gateway.orgs.organizations import list_children

    child = Principal(api_key_id="key_x", organization_id=tree.child_id, scopes=("org:read",))
    async with api.runtime.database.read() as session:
        assert (await list_children(session, child, tree.parent_id, PageRequest())).items == []
        parent = Principal(api_key_id="key_y", organization_id=tree.parent_id, scopes=("org:read",))
        assert len((await list_children(session, parent, tree.parent_id, PageRequest())).items) == 2


async def test_a_parent_key_acting_in_a_child_still_sees_its_own_tree(api, tree):
    body = await api.graphql(
        "{ viewer { parentOrganization { id metadata children { nodes { id } } } } }", key=tree.parent_secret, headers={"X-Socialgate-Org": tree.child_id}
    )
    parent = body["data"]["viewer"]["parentOrganization"]
    assert parent["id"] == tree.parent_id and parent["metadata"] == {"billing": "agency-only"}
    assert {n["id"] for n in parent["children"]["nodes"]} == {tree.child_id, tree.sibling_id}


async def test_a_child_admin_key_cannot_change_its_parent_or_siblings(api, tree):
    for target in (tree.parent_id, tree.sibling_id):
        body = await api.graphql(UPDATE_ORG, {"input": {"id": target, "name": "Taken"}}, key=tree.child_secret)
        assert body["data"]["updateOrganization"] == {"organization": None, "userErrors": [{"code": "ORGANIZATION_NOT_FOUND"}]}
    for mutation in STATUS_MUTATIONS:
        for target in (tree.parent_id, tree.sibling_id, tree.child_id):
            body = await api.graphql(f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}", {"id": target}, key=tree.child_secret)
            assert body["data"][mutation]["userErrors"] == [{"code": "ORGANIZATION_NOT_FOUND"}], (mutation, target)
    nested = await api.graphql(CREATE_ORG, {"input": {"name": "Grandchild"}}, key=tree.child_secret)
    assert nested["data"]["createOrganization"]["userErrors"] == [{"code": "NESTING_TOO_DEEP"}]
    for target in (tree.parent_id, tree.sibling_id):
        acting = await api.graphql("{ viewer { apiKeyId } }", key=tree.child_secret, headers={"X-Socialgate-Org": target})
        assert acting["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    intact = await api.graphql("query($id: ID!) { organization(id: $id) { name status } }", {"id": tree.sibling_id}, key=tree.parent_secret)
    assert intact["data"]["organization"] == {"name": "Client B", "status": "active"}


async def test_acting_in_a_child_changes_only_that_child(api, tree):
    acting = {"X-Socialgate-Org": tree.child_id}
    for target in (tree.parent_id, tree.sibling_id):
        body = await api.graphql(UPDATE_ORG, {"input": {"id": target, "name": "Taken"}}, key=tree.parent_secret, headers=acting)
        assert body["data"]["updateOrganization"]["userErrors"] == [{"code": "ORGANIZATION_NOT_FOUND"}], target
        for mutation in STATUS_MUTATIONS:
            body = await api.graphql(f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}", {"id": target}, key=tree.parent_secret, headers=acting)
            assert body["data"][mutation]["userErrors"] == [{"code": "ORGANIZATION_NOT_FOUND"}], (mutation, target)
    renamed = await api.graphql(UPDATE_ORG, {"input": {"id": tree.child_id, "name": "Client A2"}}, key=tree.parent_secret, headers=acting)
    assert renamed["data"]["updateOrganization"]["userErrors"] == []
    # The parent's keys stay out of reach of a key acting in the child.
    parent_key = (await api.graphql("{ viewer { apiKeyId } }", key=tree.parent_secret))["data"]["viewer"]["apiKeyId"]
    for mutation in ("rotateApiKey", "revokeApiKey"):
        body = await api.graphql(f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}", {"id": parent_key}, key=tree.parent_secret, headers=acting)
        assert body["data"][mutation]["userErrors"] == [{"code": "API_KEY_NOT_FOUND"}]


async def test_a_child_key_cannot_touch_its_parents_keys(api, tree):
    parent_key = (await api.graphql("{ viewer { apiKeyId } }", key=tree.parent_secret))["data"]["viewer"]["apiKeyId"]
    for mutation in ("rotateApiKey", "revokeApiKey"):
        body = await api.graphql(f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}", {"id": parent_key}, key=tree.child_secret)
        assert body["data"][mutation]["userErrors"] == [{"code": "API_KEY_NOT_FOUND"}]
    still = await api.graphql("{ viewer { apiKeyId } }", key=tree.parent_secret)
    assert still["data"]["viewer"]["apiKeyId"] == parent_key


async def _account_org(api, account_id: str) -> str:
    async with api.runtime.database.read() as session:
        return (await session.get(Account, account_id)).organization_id


async def test_accounts_belong_to_exactly_one_organization_of_the_tree(api, tree):
    acting = {"X-Socialgate-Org": tree.child_id}
    parents = (await connect(api, tree.parent_secret, credentials={"handle": "agency"}))["account"]["id"]
    body = await api.graphql(
        'mutation { connectAccount(input: {provider: "sandbox", credentials: {handle: "client"}}) { account { id } userErrors { code } } }',
        key=tree.parent_secret, headers=acting,
    )
    childs = body["data"]["connectAccount"]["account"]["id"]
    assert await _account_org(api, childs) == tree.child_id
    sibling_key = await api.graphql(
        'mutation { createApiKey(input: {scopes: ["accounts:write"]}) { secret } }', key=tree.parent_secret, headers={"X-Socialgate-Org": tree.sibling_id}
    )
    sibling_secret = sibling_key["data"]["createApiKey"]["secret"]
    out_of_reach = [
        (tree.parent_secret, {}, childs),  # the parent's key without the header: its own org only
        (tree.parent_secret, acting, parents),  # acting in the child: the child's accounts only
        (tree.child_secret, {}, parents),
        (sibling_secret, {}, childs),
    ]
    for secret, headers, account in out_of_reach:
        for mutation in ("updateAccount", "disconnectAccount"):
            body = await api.graphql(
                f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ account {{ id }} userErrors {{ code }} }} }}", {"id": account}, key=secret, headers=headers
            )
            assert body["data"][mutation] == {"account": None, "userErrors": [{"code": "ACCOUNT_NOT_FOUND"}]}, (mutation, account)
    listing = await api.graphql("{ accounts { nodes { id } } }", key=tree.child_secret)
    assert [n["id"] for n in listing["data"]["accounts"]["nodes"]] == [childs]
    done = await api.graphql("mutation($id: ID!) { disconnectAccount(input: {id: $id}) { account { status } } }", {"id": childs}, key=tree.parent_secret, headers=acting)
    assert done["data"]["disconnectAccount"]["account"]["status"] == "DISCONNECTED"


async def test_redirect_uris_stay_in_the_organization_acted_in(api, tree):
    acting = {"X-Socialgate-Org": tree.child_id}
    allowed = await api.graphql(
        'mutation { setOAuthRedirectUris(input: {redirectUris: ["https://client.example/back"]}) { redirectUris userErrors { code } } }',
        key=tree.parent_secret, headers=acting,
    )
    assert allowed["data"]["setOAuthRedirectUris"]["userErrors"] == []
    mine = await api.graphql("{ oauthRedirectUris }", key=tree.parent_secret)
    assert mine["data"]["oauthRedirectUris"] == []
    childs = await api.graphql("{ oauthRedirectUris }", key=tree.child_secret)
    assert childs["data"]["oauthRedirectUris"] == ["https://client.example/back"]
