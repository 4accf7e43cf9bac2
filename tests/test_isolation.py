"""Tenant isolation and scopes across the API: an organization's key never reaches another's data."""

import pytest

from tests.conftest import make_org_with_key
from tests.test_accounts_api import connect

CREATE_POST = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id targets { id } } } }"


@pytest.fixture
async def theirs(api):
    """Org B with an account, a published-ready post and a job; returns its ids and key."""
    other = await make_org_with_key(api.runtime, name="B")
    account = (await connect(api, other.secret, credentials={"handle": "b"}))["account"]["id"]
    post = (await api.graphql(CREATE_POST, {"i": {"text": "b's", "targets": [{"accountId": account}]}}, key=other.secret))["data"]["createPost"]["post"]
    job = (await api.graphql("mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } } }", {"id": post["id"]}, key=other.secret))["data"]["publishPost"]["job"]["id"]
    return {"org": other.organization_id, "key_id": other.api_key_id, "account": account, "post": post["id"], "job": job, "secret": other.secret}


MUTATIONS = [
    ("updateOrganization", "org", "organization { id }", "ORGANIZATION_NOT_FOUND"),
    ("suspendOrganization", "org", "organization { id }", "ORGANIZATION_NOT_FOUND"),
    ("resumeOrganization", "org", "organization { id }", "ORGANIZATION_NOT_FOUND"),
    ("archiveOrganization", "org", "organization { id }", "ORGANIZATION_NOT_FOUND"),
    ("rotateApiKey", "key_id", "apiKey { id }", "API_KEY_NOT_FOUND"),
    ("revokeApiKey", "key_id", "apiKey { id }", "API_KEY_NOT_FOUND"),
    ("updateAccount", "account", "account { id }", "ACCOUNT_NOT_FOUND"),
    ("disconnectAccount", "account", "account { id }", "ACCOUNT_NOT_FOUND"),
    ("updatePost", "post", "post { id }", "POST_NOT_FOUND"),
    ("deletePost", "post", "post { id }", "POST_NOT_FOUND"),
    ("cancelJob", "job", "job { id }", "JOB_NOT_FOUND"),
]
POST_MUTATIONS = ["publishPost", "retryPost", "cancelPost"]


@pytest.mark.parametrize(("mutation", "what", "selection", "code"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
async def test_mutations_cannot_touch_another_org(api, org, theirs, mutation, what, selection, code):
    body = await api.graphql(
        f"mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ {selection} userErrors {{ code }} }} }}", {"id": theirs[what]}, key=org.secret
    )
    payload = body["data"][mutation]
    assert payload["userErrors"] == [{"code": code}]
    assert list(payload.values())[0] is None


@pytest.mark.parametrize("mutation", POST_MUTATIONS)
async def test_publishing_mutations_cannot_touch_another_orgs_post(api, org, theirs, mutation):
    body = await api.graphql(f"mutation($id: ID!) {{ {mutation}(input: {{postId: $id}}) {{ userErrors {{ code }} }} }}", {"id": theirs["post"]}, key=org.secret)
    assert body["data"][mutation]["userErrors"] == [{"code": "POST_NOT_FOUND"}]
    schedule = await api.graphql(
        'mutation($id: ID!) { schedulePost(input: {postId: $id, publishAt: "2027-06-01T00:00:00Z"}) { userErrors { code } } }', {"id": theirs["post"]}, key=org.secret
    )
    assert schedule["data"]["schedulePost"]["userErrors"] == [{"code": "POST_NOT_FOUND"}]


async def test_queries_and_nodes_see_nothing_of_another_org(api, org, theirs):
    for field, what in [("organization", "org"), ("account", "account"), ("post", "post"), ("job", "job"), ("node", "account"), ("node", "post"), ("node", "job"), ("node", "key_id")]:
        body = await api.graphql(f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": theirs[what]}, key=org.secret)
        assert body["data"][field] is None, (field, what)
    lists = await api.graphql("{ accounts { nodes { id } } posts { nodes { id } } jobs { nodes { id } } apiKeys { nodes { id } } media { nodes { id } } }", key=org.secret)
    assert lists["data"]["accounts"]["nodes"] == [] and lists["data"]["posts"]["nodes"] == [] and lists["data"]["jobs"]["nodes"] == []
    assert lists["data"]["media"]["nodes"] == []
    assert [n["id"] for n in lists["data"]["apiKeys"]["nodes"]] == [org.api_key_id]
    still = await api.graphql("query($id: ID!) { post(id: $id) { text } }", {"id": theirs["post"]}, key=theirs["secret"])
    assert still["data"]["post"]["text"] == "b's"


async def test_nested_fields_check_their_own_scopes(api, org):
    from gateway.auth.keys import mint_key

    account = (await connect(api, org.secret, credentials={"handle": "mine"}))["account"]["id"]
    await api.graphql(CREATE_POST, {"i": {"text": "mine", "targets": [{"accountId": account}]}}, key=org.secret)
    async with api.runtime.database.write() as session:
        reader = (await mint_key(session, org.organization_id, ["posts:read"])).secret
    plain = await api.graphql("{ posts { nodes { text targets { status provider } } } }", key=reader)
    assert "errors" not in plain and plain["data"]["posts"]["nodes"][0]["text"] == "mine"
    for nested, scope in [("targets { account { handle } }", "accounts:read"), ("media { id }", "media:read")]:
        denied = await api.graphql(f"{{ posts {{ nodes {{ {nested} }} }} }}", key=reader)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert scope in denied["errors"][0]["message"]
    allowed = await api.graphql("{ posts { nodes { targets { account { handle } } media { id } } } }", key=org.secret)
    assert allowed["data"]["posts"]["nodes"][0]["targets"][0]["account"]["handle"] == "mine"
