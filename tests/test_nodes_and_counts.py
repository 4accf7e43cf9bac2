"""``nodes(ids:)`` and ``totalCount`` (issue 23.2).

``nodes`` answers many ids in one field, in the order given, with one query per type, and hides
what ``node`` hides: an id of another organization, an unknown or malformed one is null. Every
connection has ``totalCount``: the same filters as its page, whatever the cursors, counted in one
statement only when selected, and priced in the query's cost.
"""

import pytest
from sqlalchemy import event

from gateway.auth.keys import mint_key
from schema.relay import _NODES_RESOLVERS
from tests.conftest import make_org_with_key
from tests.test_accounts_api import connect

CREATE_POST = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id targets { id } } userErrors { code } } }"
PUBLISH = "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code } } }"
NODES = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
  ... on Post { text } ... on Account { handle } ... on Target { provider } ... on Organization { name } } }"""


async def _quiet(api):
    """Only the request's statements count: stop the background work that reads the same engine."""
    if api.runtime.scheduler is not None:
        await api.runtime.scheduler.stop()
        api.runtime.scheduler = None
    if api.runtime.webhook_dispatcher is not None:  # it looks for due deliveries on the same engine
        await api.runtime.webhook_dispatcher.stop()
        api.runtime.webhook_dispatcher = None
    await api.runtime.relay.stop()


async def _statements(api, query: str, variables: dict, key: str) -> tuple[dict, list[str]]:
    """The response and the SELECT statements the request ran (each read session adds a BEGIN)."""
    engine = api.runtime.database.engine.sync_engine
    seen: list[str] = []

    def listener(*args):
        seen.append(args[2])  # the statement's text

    event.listen(engine, "before_cursor_execute", listener)
    try:
        body = await api.graphql(query, variables, key=key)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return body, [s for s in seen if s.lstrip().upper().startswith("SELECT")]


async def _post(api, key: str, account: str, text: str) -> dict:
    body = await api.graphql(CREATE_POST, {"i": {"text": text, "targets": [{"accountId": account}]}}, key=key)
    assert body["data"]["createPost"]["userErrors"] == [], body
    return body["data"]["createPost"]["post"]


@pytest.fixture
async def mine(api, org):
    """Org A's objects of every kind a client meets: account, posts, a target, a job, a key."""
    account = (await connect(api, org.secret, credentials={"handle": "a"}))["account"]["id"]
    posts = [await _post(api, org.secret, account, f"post {n}") for n in range(3)]
    job = (await api.graphql(PUBLISH, {"id": posts[0]["id"]}, key=org.secret))["data"]["publishPost"]["job"]["id"]
    return {"account": account, "posts": [p["id"] for p in posts], "target": posts[0]["targets"][0]["id"], "job": job}


@pytest.fixture
async def theirs(api):
    other = await make_org_with_key(api.runtime, name="B")
    account = (await connect(api, other.secret, credentials={"handle": "b"}))["account"]["id"]
    post = await _post(api, other.secret, account, "b's")
    job = (await api.graphql(PUBLISH, {"id": post["id"]}, key=other.secret))["data"]["publishPost"]["job"]["id"]
    return {
        "org": other.organization_id, "key": other.api_key_id, "account": account, "post": post["id"],
        "target": post["targets"][0]["id"], "job": job, "secret": other.secret,
    }


async def test_nodes_answers_every_kind_in_the_order_asked(api, org, mine):
    ids = [mine["posts"][2], mine["account"], mine["target"], org.organization_id, mine["job"], org.api_key_id, mine["posts"][0],
           mine["posts"][2]]
    body = await api.graphql(NODES, {"ids": ids}, key=org.secret)
    assert "errors" not in body, body
    nodes = body["data"]["nodes"]
    assert [n["id"] for n in nodes] == ids
    assert [n["__typename"] for n in nodes] == ["Post", "Account", "Target", "Organization", "Job", "ApiKey", "Post", "Post"]
    assert nodes[0]["text"] == "post 2" and nodes[1]["handle"] == "a" and nodes[2]["provider"] == "sandbox"
    assert nodes[3]["name"] == "Acme"
    # Each is what node(id) says of the same id.
    for value, found in zip(ids, nodes, strict=True):
        single = await api.graphql("query($id: ID!) { node(id: $id) { __typename id } }", {"id": value}, key=org.secret)
        assert single["data"]["node"] == {"__typename": found["__typename"], "id": found["id"]}


async def test_nodes_of_another_organization_come_back_null(api, org, mine, theirs):
    foreign = [theirs[k] for k in ("org", "key", "account", "post", "target", "job")]
    ids = [mine["posts"][0], *foreign, mine["account"]]
    body = await api.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids}, key=org.secret)
    assert "errors" not in body, body
    assert body["data"]["nodes"] == [{"id": mine["posts"][0]}, *[None] * len(foreign), {"id": mine["account"]}]
    # The same ids answer for their own organization.
    own = await api.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": foreign}, key=theirs["secret"])
    assert own["data"]["nodes"] == [{"id": value} for value in foreign]


@pytest.mark.parametrize("bad_id", ["", "nope", "org_short", "zzz_" + "a" * 24, "post_" + "a" * 24, "med_" + "a" * 24, "conn_" + "a" * 24])
async def test_unknown_and_malformed_ids_are_null_in_nodes(api, org, mine, bad_id):
    body = await api.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [bad_id, mine["account"]]}, key=org.secret)
    assert body["data"]["nodes"] == [None, {"id": mine["account"]}] and "errors" not in body


async def test_nodes_is_null_at_the_positions_of_a_type_the_key_may_not_read(api, org, mine):
    async with api.runtime.database.write() as session:
        reader = (await mint_key(session, org.organization_id, ["posts:read"])).secret
    ids = [mine["posts"][0], mine["account"], mine["posts"][1], mine["job"]]
    body = await api.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids}, key=reader)
    assert body["data"]["nodes"] == [{"id": ids[0]}, None, {"id": ids[2]}, None]
    errors = sorted((tuple(e["path"]), e["extensions"]["code"]) for e in body["errors"])
    assert errors == [(("nodes", 1), "FORBIDDEN"), (("nodes", 3), "FORBIDDEN")]
    assert {"accounts:read", "jobs:read"} == {e["message"].split("'")[1] for e in body["errors"]}


async def test_nodes_without_a_key_is_unauthenticated(api, mine):
    body = await api.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [mine["account"]]})
    assert body["data"] == {"nodes": None} and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_nodes_takes_at_most_a_hundred_ids(api, org, mine):
    hundred = [mine["account"]] * 100
    body = await api.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": hundred}, key=org.secret)
    assert "errors" not in body and len(body["data"]["nodes"]) == 100
    for query, variables in [
        ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": hundred + [mine["account"]]}),
        ("{ nodes(ids: [%s]) { id } }" % ", ".join(f'"{mine["account"]}"' for _ in range(101)), {}),
    ]:
        refused = await api.graphql(query, variables, key=org.secret)
        assert refused["data"] is None, refused
        [error] = refused["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "ids", error
        assert "at most 100" in error["message"]


async def test_nodes_runs_one_query_per_type(api, org, mine):
    await _quiet(api)
    more = [await _post(api, org.secret, mine["account"], f"extra {n}") for n in range(10)]
    many_posts = mine["posts"] + [p["id"] for p in more]
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    await api.graphql(query, {"ids": [mine["account"]]}, key=org.secret)  # the key's last-used stamp is written once, first

    async def count(ids: list[str]) -> int:
        body, statements = await _statements(api, query, {"ids": ids}, org.secret)
        unknown = {"zzz_" + "a" * 24, "nope"}
        assert [n and n["id"] for n in body["data"]["nodes"]] == [None if i in unknown else i for i in ids], body
        return len(statements)

    one_post = await count(mine["posts"][:1])
    assert await count(many_posts) == one_post  # thirteen posts, one query
    three_types = await count([*many_posts, mine["account"], mine["job"]])
    assert three_types == one_post + 2  # one more query per type
    # Ids of no known kind cost no query.
    assert await count([*many_posts, mine["account"], mine["job"], "zzz_" + "a" * 24, "nope"]) == three_types


async def test_every_registered_id_prefix_has_a_batch_resolver():
    assert set(_NODES_RESOLVERS) == {"org", "key", "acct", "conn", "med", "post", "tgt", "job", "whk", "whd", "camp", "adacct", "adc", "adset", "adv"}


# --- totalCount ---------------------------------------------------------------------------------

CONNECTIONS = {
    "accounts": "accounts", "apiKeys": "apiKeys", "media": "media", "posts": "posts", "jobs": "jobs",
}


async def test_every_connection_type_has_a_total_count(api, org):
    body = await api.graphql(
        "{ __schema { types { name kind fields { name type { kind ofType { name } } } } } }", key=org.secret
    )
    types = [t for t in body["data"]["__schema"]["types"] if t["kind"] == "OBJECT"]
    connections = [t for t in types if {"edges", "pageInfo"} <= {f["name"] for f in t["fields"]}]
    assert {t["name"] for t in connections} == {
        "AccountConnection", "ApiKeyConnection", "JobConnection", "MediaAssetConnection", "OrganizationConnection", "PostConnection",
        "AuditEntryConnection", "CampaignConnection",
        "WebhookEndpointConnection", "WebhookDeliveryConnection",
        "AdAccountConnection", "AdCampaignConnection",
    }
    for connection in connections:
        [total] = [f for f in connection["fields"] if f["name"] == "totalCount"]
        assert total["type"] == {"kind": "NON_NULL", "ofType": {"name": "Int"}}, connection["name"]


async def test_total_count_counts_every_connection_whatever_the_page(api, org, mine):
    children = 3
    for n in range(children):
        await api.graphql('mutation($n: String!) { createOrganization(input: {name: $n}) { userErrors { code } } }', {"n": f"c{n}"}, key=org.secret)
    body = await api.graphql(
        """query($org: ID!) { accounts(first: 0) { totalCount } apiKeys(first: 1) { totalCount nodes { id } }
             media { totalCount } posts(first: 1) { totalCount } jobs(last: 1) { totalCount }
             organization(id: $org) { children(first: 1) { totalCount } } }""",
        {"org": org.organization_id},
        key=org.secret,
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["accounts"]["totalCount"] == 1 and data["apiKeys"]["totalCount"] == 1 and data["media"]["totalCount"] == 0
    assert data["posts"]["totalCount"] == 3 and data["jobs"]["totalCount"] == 1
    assert data["organization"]["children"]["totalCount"] == children


async def test_total_count_uses_the_same_filters_and_ignores_cursors(api, org, mine, theirs):
    other_account = (await connect(api, org.secret, credentials={"handle": "a2"}))["account"]["id"]
    for n in range(2):
        await _post(api, org.secret, other_account, f"other {n}")
    query = """query($f: PostFilter, $first: Int, $after: String, $last: Int, $before: String) {
      posts(filter: $f, first: $first, after: $after, last: $last, before: $before) {
        totalCount nodes { id } pageInfo { hasNextPage endCursor startCursor } } }"""

    async def posts(**variables):
        body = await api.graphql(query, variables, key=org.secret)
        assert "errors" not in body, body
        return body["data"]["posts"]

    assert (await posts())["totalCount"] == 5
    by_account = {"accountId": mine["account"]}
    seen, after = [], None
    while True:  # page through one at a time: the count stays that of the whole filtered list
        page = await posts(f=by_account, first=1, after=after)
        assert page["totalCount"] == 3
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(mine["posts"])
    assert (await posts(f=by_account, last=1, before=after))["totalCount"] == 3
    assert (await posts(f={"accountId": other_account}))["totalCount"] == 2
    assert (await posts(f={"status": "SCHEDULED"}))["totalCount"] == 0
    # Another organization's posts are not counted, nor theirs ours.
    assert (await posts(f={"accountId": theirs["account"]}))["totalCount"] == 0
    their_count = await api.graphql("{ posts { totalCount } }", key=theirs["secret"])
    assert their_count["data"]["posts"]["totalCount"] == 1


async def test_total_count_runs_one_statement_and_only_when_selected(api, org, mine):
    await _quiet(api)
    await api.graphql("{ viewer { apiKeyId } }", key=org.secret)  # the key's last-used stamp is written once, first
    _, without = await _statements(api, "{ posts(first: 2) { nodes { id } } }", {}, org.secret)
    body, with_count = await _statements(api, "{ posts(first: 2) { nodes { id } totalCount } }", {}, org.secret)
    assert body["data"]["posts"]["totalCount"] == 3
    assert len(with_count) == len(without) + 1
    [counting] = [s for s in with_count if "count(" in s.lower()]
    assert "posts" in counting.lower()
    assert not any("count(" in s.lower() for s in without)


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [
        ("{ posts(first: 10) { nodes { id } } }", {}, 10),
        ("{ posts(first: 10) { nodes { id } totalCount } }", {}, 11),
        ("{ posts(first: 0) { totalCount } }", {}, 1),
        ("{ posts { totalCount } }", {}, 21),
        ("{ posts(first: 10) { ...counted } } fragment counted on PostConnection { totalCount nodes { id } }", {}, 11),
        ('{ nodes(ids: ["a", "b", "c"]) { id } }', {}, 3),
        ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["a"] * 5}, 5),
        ('{ nodes(ids: "a") { id } }', {}, 1),
        ('{ nodes(ids: ["a", "b"]) { ... on Post { targets { id } } } }', {}, 4),
        ('{ node(id: "a") { id } }', {}, 1),
        ('{ connection(id: "conn_x") { id } }', {}, 1),
    ],
)
async def test_total_count_and_nodes_are_priced(api, org, query, variables, cost):
    body = await api.graphql(query, variables, key=org.secret)
    assert body["extensions"]["cost"]["requestedQueryCost"] == cost, body
