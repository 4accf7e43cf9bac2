"""The read path of a query (issue 21): one read transaction per query, shared by its loaders; a
pool that keeps its connections; accounts read without their credentials, built once each."""

import asyncio

import pytest
from sqlalchemy import event

import schema.posts
from tests.engine import quiet_background
from tests.test_accounts_api import connect

CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id status } userErrors { code } } }"
PAGE = """{
  posts(first: 20) { nodes { id status media { id } targets { id status account { id provider handle } } } }
  accounts(first: 5) { nodes { id } }
}"""

TARGETS_PAGE = "{ posts(first: 20) { nodes { targets { account { id provider handle } } } } }"


@pytest.fixture
async def page(api, org):
    """Ten posts, each to the same two accounts; the background loops stopped, so only the
    requests' own statements reach the engine."""
    accounts = [(await connect(api, org.secret, credentials={"handle": h}))["account"]["id"] for h in ("ann", "bob")]
    for i in range(10):
        body = await api.graphql(CREATE, {"i": {"text": f"post {i}", "targets": [{"accountId": a} for a in accounts]}}, key=org.secret)
        assert body["data"]["createPost"]["userErrors"] == []
    await quiet_background(api.runtime)
    return accounts


def _listening(engine, name):
    seen: list = []
    listener = lambda *args: seen.append(args)  # noqa: E731
    event.listen(engine, name, listener)
    return seen, lambda: event.remove(engine, name, listener)


async def _query_seeing(api, org, query, name):
    """The answer to ``query`` and what the read engine's ``name`` event saw while it ran."""
    seen, stop = _listening(api.runtime.database.engine.sync_engine, name)
    try:
        body = await api.graphql(query, key=org.secret)
    finally:
        stop()
    assert "errors" not in body, body
    return body, seen


async def test_a_query_reads_in_one_transaction(api, org, page):
    body, begins = await _query_seeing(api, org, PAGE, "begin")
    assert len(body["data"]["posts"]["nodes"]) == 10
    assert {t["account"]["handle"] for p in body["data"]["posts"]["nodes"] for t in p["targets"]} == {"ann", "bob"}
    # One for the whole query: the list, two root fields and the targets', media's and accounts'
    # loaders used to begin one each. The key's lookup, sent ALONE on the connection SQLite keeps
    # for it (gateway.storage.standing), begins none once that connection has served a request.
    assert len(begins) == 1


async def test_a_mutation_reads_what_it_wrote(api, org, page):
    """Mutations keep a session per read: the payload sees the row its write committed."""
    body = await api.graphql(CREATE, {"i": {"text": "fresh", "targets": [{"accountId": page[0]}]}}, key=org.secret)
    assert body["data"]["createPost"]["post"]["status"] == "DRAFT"


async def test_accounts_are_read_without_their_credentials(api, org, page):
    _body, statements = await _query_seeing(api, org, TARGETS_PAGE, "before_cursor_execute")
    reads_of_accounts = [args[2] for args in statements if "FROM accounts" in args[2]]
    assert reads_of_accounts, "the page reads its accounts"
    assert not any("credentials" in sql for sql in reads_of_accounts)


async def test_each_account_is_built_once_per_request(api, org, page, monkeypatch):
    built = []
    original = schema.posts.AccountType.from_row

    def counting(row):
        built.append(row.id)
        return original(row)

    monkeypatch.setattr(schema.posts.AccountType, "from_row", counting)
    body = await api.graphql(TARGETS_PAGE, key=org.secret)
    assert sum(len(p["targets"]) for p in body["data"]["posts"]["nodes"]) == 20
    assert sorted(built) == sorted(page)


async def test_concurrent_queries_keep_their_pooled_connections(api, org, page):
    from gateway.auth.rate_limit import CostRateLimiter, Tier

    api.runtime.rate_limiter = CostRateLimiter(Tier("test", capacity=1e9, restore_rate=1e9))  # 32 pages at once
    async def burst() -> None:
        bodies = await asyncio.gather(*(api.graphql(PAGE, key=org.secret) for _ in range(16)))
        assert [body.get("errors") for body in bodies] == [None] * 16

    await burst()  # the pool opens what sixteen concurrent queries need
    connects, stop = _listening(api.runtime.database.engine.sync_engine, "connect")
    try:
        await burst()
    finally:
        stop()
    assert connects == []  # none was closed on return and opened again


NO_LOADER_PAGES = {
    "nodes": "{ posts(first: 20) { nodes { id targets { id status account { id provider } } } } }",
    "edges and fragments": """{ posts(first: 20) { ...page } }
        fragment page on PostConnection { edges { node { ... on Post { id targets { id ...who } } } } }
        fragment who on Target { status account { id provider } }""",
}


@pytest.fixture
def loader_reads(monkeypatch):
    """Every batch the targets' and accounts' DataLoaders read, by loader."""
    import schema.loaders

    reads: list[str] = []
    for name in ("_load_targets", "_load_accounts"):
        original = getattr(schema.loaders.Loaders, name)

        async def recording(self, ids, _original=original, _name=name):
            reads.append(_name)
            return await _original(self, ids)

        monkeypatch.setattr(schema.loaders.Loaders, name, recording)
    return reads


@pytest.mark.parametrize("shape", list(NO_LOADER_PAGES))
async def test_a_page_reads_its_targets_and_accounts_ahead(api, org, page, loader_reads, shape):
    """The posts list reads the targets and accounts its query selects in its own session, one
    statement each, and their fields answer from those rows: no DataLoader batch runs."""
    body, statements = await _query_seeing(api, org, NO_LOADER_PAGES[shape], "before_cursor_execute")
    items = body["data"]["posts"]["nodes"] if "nodes" in body["data"]["posts"] else [e["node"] for e in body["data"]["posts"]["edges"]]
    assert len(items) == 10
    assert all(len(p["targets"]) == 2 and {t["account"]["id"] for t in p["targets"]} == set(page) for p in items)
    assert all(t["status"] == "DRAFT" and t["account"]["provider"] == "sandbox" for p in items for t in p["targets"])
    assert loader_reads == []
    sql = [args[2] for args in statements]
    assert sum("FROM targets" in s for s in sql) == 1
    assert sum("FROM accounts" in s for s in sql) == 1


async def test_targets_and_accounts_not_asked_for_are_not_read(api, org, page, loader_reads):
    _body, statements = await _query_seeing(api, org, "{ posts(first: 20) { nodes { id text } } }", "before_cursor_execute")
    assert not any("FROM targets" in args[2] or "FROM accounts" in args[2] for args in statements)
    _body, statements = await _query_seeing(api, org, "{ posts(first: 20) { nodes { id targets { id } } } }", "before_cursor_execute")
    assert not any("FROM accounts" in args[2] for args in statements)
    assert loader_reads == []


async def test_one_post_still_loads_its_targets_and_accounts_through_the_loaders(api, org, page, loader_reads):
    """``post(id)`` reads nothing ahead: the same fields fall back to their DataLoaders."""
    first = (await api.graphql("{ posts(first: 1) { nodes { id } } }", key=org.secret))["data"]["posts"]["nodes"][0]["id"]
    body = await api.graphql('query($id: ID!) { post(id: $id) { targets { account { id } } } }',
                             {"id": first}, key=org.secret)
    assert {t["account"]["id"] for t in body["data"]["post"]["targets"]} == set(page)
    assert sorted(loader_reads) == ["_load_accounts", "_load_targets"]


async def test_a_key_without_accounts_read_gets_targets_and_no_account(api, org, page):
    """The read-ahead follows the scopes: without ``accounts:read`` no account is read, and each
    ``account`` is FORBIDDEN where it is asked, the targets still answered."""
    from gateway.auth.keys import mint_key

    async with api.runtime.database.write() as session:
        secret = (await mint_key(session, org.organization_id, ["posts:read"])).secret
    seen, stop = _listening(api.runtime.database.engine.sync_engine, "before_cursor_execute")
    try:
        body = await api.graphql(NO_LOADER_PAGES["nodes"], key=secret)
    finally:
        stop()
    assert not any("FROM accounts" in args[2] for args in seen)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert len(body["errors"]) == 20
    assert all(t["id"] and t["account"] is None for p in body["data"]["posts"]["nodes"] for t in p["targets"])


async def test_pages_of_posts_share_one_statement_built_once(api, org, page):
    """The posts list is built once per set of filters and once per page shape (first page, after
    a cursor), with its values as bind parameters: the organization, the filters, the cursor and
    the size change nothing but the values, and totalCount counts with the same values."""
    from gateway.content import posts as content
    from gateway.core import pagination

    async def listed(query):
        body = await api.graphql(query, key=org.secret)
        assert "errors" not in body, body
        return body["data"]["posts"]

    first = await listed("{ posts(first: 3) { nodes { id } pageInfo { endCursor } totalCount } }")
    filters, statements = content._listed_posts.cache_info().currsize, len(pagination._PAGE_STATEMENTS)
    after = first["pageInfo"]["endCursor"]
    second = await listed(f'{{ posts(first: 4, after: "{after}") {{ nodes {{ id }} totalCount }} }}')
    third = await listed(f'{{ posts(first: 2, after: "{after}") {{ nodes {{ id }} }} }}')
    statements_after_cursor = len(pagination._PAGE_STATEMENTS)
    drafts = await listed('{ posts(first: 5, filter: {status: DRAFT}) { nodes { id } totalCount } }')
    none = await listed('{ posts(first: 5, filter: {status: PUBLISHED}) { nodes { id } totalCount } }')
    again = await listed('{ posts(first: 1, filter: {status: DRAFT}) { nodes { id } totalCount } }')
    assert len(first["nodes"]) == 3 and first["totalCount"] == second["totalCount"] == 10
    assert [n["id"] for n in second["nodes"]][:2] == [n["id"] for n in third["nodes"]]
    assert set(n["id"] for n in first["nodes"]).isdisjoint(n["id"] for n in second["nodes"])
    assert (drafts["totalCount"], none["totalCount"], again["totalCount"]) == (10, 0, 10)
    assert statements_after_cursor <= statements + 1  # one more shape: after a cursor
    assert content._listed_posts.cache_info().currsize <= filters + 1  # one more set of filters: status
    assert len(pagination._PAGE_STATEMENTS) <= statements_after_cursor + 1
