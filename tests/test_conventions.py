"""Cursor pagination, node(id), query cost and rate limiting, depth/alias/token limits."""

import base64

import pytest

from gateway.auth.rate_limit import CostRateLimiter, Tier
from tests.conftest import make_org_with_key

CHILDREN = "query($first: Int, $after: String, $last: Int, $before: String) { node(id: \"%s\") { ... on Organization { children(first: $first, after: $after, last: $last, before: $before) { nodes { name } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } }"


async def _children(api, org, n):
    for i in range(n):
        body = await api.graphql(
            'mutation($n: String!) { createOrganization(input: {name: $n}) { userErrors { code } } }', {"n": f"c{i}"}, key=org.secret
        )
        assert body["data"]["createOrganization"]["userErrors"] == []


async def test_keyset_pagination_forward_and_backward(api, org):
    await _children(api, org, 5)
    query = CHILDREN % org.organization_id
    seen, after = [], None
    while True:
        page = (await api.graphql(query, {"first": 2, "after": after}, key=org.secret))["data"]["node"]["children"]
        seen += [n["name"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["c4", "c3", "c2", "c1", "c0"]
    last_two = (await api.graphql(query, {"last": 2}, key=org.secret))["data"]["node"]["children"]
    assert [n["name"] for n in last_two["nodes"]] == ["c1", "c0"]
    before = (await api.graphql(query, {"last": 2, "before": last_two["pageInfo"]["startCursor"]}, key=org.secret))
    assert [n["name"] for n in before["data"]["node"]["children"]["nodes"]] == ["c3", "c2"]


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 101},
        {"first": -1},
        {"first": 2, "last": 2},
        {"after": "garbage!"},
        {"after": base64.urlsafe_b64encode(b"2026-01-01T00:00:00|nope").decode()},
        {"before": base64.urlsafe_b64encode(b"not a date|org_x").decode()},
    ],
)
async def test_bad_page_arguments_are_coded_errors(api, org, variables):
    body = await api.graphql(CHILDREN % org.organization_id, variables, key=org.secret)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("bad_id", ["", "nope", "org_short", "zzz_" + "a" * 24, "post_" + "a" * 24])
async def test_node_with_unknown_or_wrong_ids_is_null(api, org, bad_id):
    body = await api.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": bad_id}, key=org.secret)
    assert body == {"data": {"node": None}, "extensions": body["extensions"]}


async def test_node_is_isolated_per_org(api, org):
    other = await make_org_with_key(api.runtime, name="Other")
    body = await api.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": other.organization_id}, key=org.secret)
    assert body["data"]["node"] is None
    own = await api.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": org.organization_id}, key=org.secret)
    assert own["data"]["node"]["id"] == org.organization_id


async def test_cost_is_reported_and_capped(api, org):
    small = await api.graphql("{ viewer { organization { id } } }", key=org.secret)
    cost = small["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2
    assert cost["throttleStatus"]["maximumAvailable"] == api.runtime.rate_limiter.tier.capacity
    big = await api.graphql(
        '{ node(id: "%s") { ... on Organization { children(first: 100) { nodes { children(first: 100) { nodes { id } } } } } } }'
        % org.organization_id,
        key=org.secret,
    )
    assert big["data"] is None
    assert big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert big["extensions"]["cost"]["requestedQueryCost"] > 1000


async def test_a_document_whose_price_does_not_depend_on_its_variables_is_priced_once(api, org, monkeypatch):
    """Its cost is kept by text and operation; one whose page sizes are variables is priced for
    their values each time, and every request is still charged what it costs."""
    import schema.cost

    api.runtime.rate_limiter = CostRateLimiter(Tier(name="stopped", capacity=2000, restore_rate=50), clock=lambda: 100.0)
    walks = []
    original = schema.cost.operation_cost
    monkeypatch.setattr(schema.cost, "operation_cost", lambda *args: walks.append(args[3]) or original(*args))
    query = "{ posts(first: 7) { nodes { id } } viewer { organization { id } } }"
    costs = [(await api.graphql(query, key=org.secret))["extensions"]["cost"] for _ in range(3)]
    assert [c["requestedQueryCost"] for c in costs] == [9, 9, 9] and len(walks) == 1
    remaining = [c["throttleStatus"]["currentlyAvailable"] for c in costs]
    assert remaining == [1991, 1982, 1973]  # charged each time (a stopped clock: no refill), priced once
    paged = "query($n: Int) { posts(first: $n) { nodes { id } } }"
    priced = [(await api.graphql(paged, {"n": n}, key=org.secret))["extensions"]["cost"]["requestedQueryCost"] for n in (3, 9)]
    assert priced == [3, 9] and walks[1:] == [{"n": 3}, {"n": 9}]
    walks.clear()  # variables that price nothing (a mutation's input, say): walked once
    named = "query($q: String) { posts(first: 2, filter: {provider: $q}) { nodes { id } } }"
    priced = [(await api.graphql(named, {"q": q}, key=org.secret))["extensions"]["cost"]["requestedQueryCost"] for q in ("a", "b")]
    assert priced == [2, 2] and walks == [{"q": "a"}]
    defaulted = "query($n: Int = 4) { posts(first: $n) { nodes { id } } }"  # a default is a variable too
    priced = [(await api.graphql(defaulted, variables, key=org.secret))["extensions"]["cost"]["requestedQueryCost"] for variables in ({}, {"n": 6})]
    assert priced == [4, 6] and len(walks) == 3


async def test_rate_limit_by_cost(api, org):
    # A stopped clock: nothing refills between the requests, so the wait asked for is exact.
    api.runtime.rate_limiter = CostRateLimiter(Tier(name="tiny", capacity=5, restore_rate=0.5), clock=lambda: 100.0)
    for _ in range(2):
        ok = await api.graphql("{ viewer { organization { id } } }", key=org.secret)
        assert "errors" not in ok
    limited = await api.graphql("{ viewer { organization { id } } }", key=org.secret)
    [error] = limited["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == 2  # 1 of the 2 it costs is left; 0.5 a second restores the other
    # Another key has its own bucket.
    other = await make_org_with_key(api.runtime, name="Other")
    assert "errors" not in await api.graphql("{ viewer { organization { id } } }", key=other.secret)


def test_token_bucket_refills_with_time():
    now = [0.0]
    limiter = CostRateLimiter(Tier("t", capacity=10, restore_rate=2), clock=lambda: now[0])
    assert limiter.consume("k", 10).allowed
    refused = limiter.consume("k", 4)
    assert not refused.allowed and refused.retry_after == pytest.approx(2.0)
    now[0] = 2.0
    assert limiter.consume("k", 4).allowed


@pytest.mark.parametrize(
    "query",
    [
        "{ viewer { " + "organization { parent { " * 8 + "id" + " } }" * 8 + " } }",
        "{ " + " ".join(f"a{i}: viewer {{ apiKeyId }}" for i in range(31)) + " }",
        "{ viewer { " + " ".join(["apiKeyId"] * 5001) + " } }",
    ],
    ids=["depth", "aliases", "tokens"],
)
async def test_document_limits(api, org, query):
    body = await api.graphql(query, key=org.secret)
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_repeated_document_is_validated_once(api, org, monkeypatch):
    """The limits' rules are the same objects on every request, and the parsed document is the
    same object for the same text (the parser's cache), so the validation cache hits by identity."""
    import schema.validation_cache

    validated = []
    original = schema.validation_cache.validate_document
    monkeypatch.setattr(schema.validation_cache, "validate_document", lambda *args: validated.append(args[1]) or original(*args))
    query = "query Repeated { viewer { apiKeyId } }"
    for _ in range(4):
        body = await api.graphql(query, key=org.secret)
        assert body["data"]["viewer"]["apiKeyId"]
    assert len(validated) == 1
    broken = "query Broken { viewer { noSuchField } }"
    for _ in range(2):  # errors are kept as well, and answered every time
        assert (await api.graphql(broken, key=org.secret))["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert len(validated) == 2


def test_a_validation_is_found_only_by_the_document_it_was_made_for(shared_schema):
    """Entries are keyed by the document's id and hold the document: a document that took a freed
    one's id (simulated here) is validated afresh, never given the other's (empty) errors."""
    from graphql import parse, specified_rules
    from strawberry.types.execution import ExecutionContext

    from schema.validation_cache import _BY_SCHEMA, ValidationByDocument

    valid, invalid = parse("{ viewer { apiKeyId } }"), parse("{ viewer { noSuchField } }")
    extension = ValidationByDocument(maxsize=8)
    context = ExecutionContext(query=None, schema=shared_schema, allowed_operations=(), context=None)
    context.graphql_document, context.validation_rules = valid, tuple(specified_rules)
    extension.execution_context = context
    list(extension.on_validate())
    assert context.pre_execution_errors == []
    entries = _BY_SCHEMA[shared_schema._schema]
    entries[id(invalid)] = entries[id(valid)]  # as if ``invalid`` had been given ``valid``'s id
    context.graphql_document, context.pre_execution_errors = invalid, None
    list(extension.on_validate())
    assert [error.message for error in context.pre_execution_errors] == ["Cannot query field 'noSuchField' on type 'Viewer'."]


# Issue 11.2: the attack — one negative page beside four full ones — priced the query below zero
# and paid the difference into the caller's bucket.
NEGATIVE_PAGE_ATTACK = (
    '{ organization(id: "%s") { children(first: -100000) { nodes { id } } } '
    + " ".join(f"p{i}: posts(first: 100) {{ nodes {{ id targets {{ id }} media {{ id }} }} }}" for i in range(4))
    + " }"
)


def _frozen_limiter(api):
    """A bucket whose clock stands still, so whether a query fits never depends on how fast the test runs."""
    api.runtime.rate_limiter = CostRateLimiter(clock=lambda: 0.0)
    return api.runtime.rate_limiter


async def test_a_negative_page_size_is_refused_before_the_query_is_priced(api, org):
    limiter = _frozen_limiter(api)
    body = await api.graphql(NEGATIVE_PAGE_ATTACK % org.organization_id, key=org.secret)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "first"
    assert "`first` of `children`" in error["message"]
    assert body["data"] is None
    # Nothing was drawn or paid in: the bucket is exactly full, not above its capacity.
    probe = await api.graphql("{ viewer { apiKeyId } }", key=org.secret)
    assert probe["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == limiter.tier.capacity - 1


async def test_the_attack_repeated_never_runs_and_full_price_queries_are_still_limited(api, org):
    _frozen_limiter(api)
    for _ in range(40):  # the reproduction: forty in a row, none of them throttled, all served
        body = await api.graphql(NEGATIVE_PAGE_ATTACK % org.organization_id, key=org.secret)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    expensive = " ".join(f"p{i}: posts(first: 100) {{ nodes {{ id targets {{ id }} media {{ id }} }} }}" for i in range(3))
    codes = []
    for _ in range(3):  # 900 points each from a full bucket of 2,000
        body = await api.graphql("{ %s }" % expensive, key=org.secret)
        codes.append(((body.get("errors") or [{}])[0].get("extensions") or {}).get("code"))
    assert codes == [None, None, "RATE_LIMITED"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($n: Int) { posts(first: $n) { nodes { id } } }", {"n": -1}),
        ("query($n: Int = -5) { posts(last: $n) { nodes { id } } }", {}),
        ("query($n: Int) { posts(first: $n) { nodes { id } } }", {"n": 101.0}),
        ('{ organization(id: "org_x") { children(last: -3) { nodes { id } } } }', {}),
    ],
    ids=["variable", "variable-default", "float-variable", "literal-last"],
)
async def test_page_sizes_out_of_range_are_refused_however_they_are_given(api, org, query, variables):
    body = await api.graphql(query, variables, key=org.secret)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_a_variables_default_page_size_is_what_gets_priced(api, org):
    body = await api.graphql("query($n: Int = 100) { posts(first: $n) { nodes { id } } }", key=org.secret)
    assert body["extensions"]["cost"]["requestedQueryCost"] == 100


def test_no_cost_can_fill_a_bucket_past_its_capacity():
    limiter = CostRateLimiter(Tier("t", capacity=10, restore_rate=1), clock=lambda: 0.0)
    assert limiter.consume("k", -1_000).remaining == 10
    assert limiter.consume("k", 10).allowed
    assert not limiter.consume("k", 1).allowed
