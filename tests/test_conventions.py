"""Cursor pagination, node(id), query cost and rate limiting, depth/alias/token limits."""

import base64

import pytest

from gateway.rate_limit import CostRateLimiter, Tier
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


async def test_rate_limit_by_cost(api, org):
    api.runtime.rate_limiter = CostRateLimiter(Tier(name="tiny", capacity=5, restore_rate=0.5))
    for _ in range(2):
        ok = await api.graphql("{ viewer { organization { id } } }", key=org.secret)
        assert "errors" not in ok
    limited = await api.graphql("{ viewer { organization { id } } }", key=org.secret)
    [error] = limited["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < error["extensions"]["retryAfter"] <= 4
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


async def test_a_repeated_document_is_validated_once(api, org):
    """The limits' rules are the same objects on every request, so the validation cache can hit."""
    from strawberry.extensions.validation_cache import _get_validate_cache

    from schema.root import DOCUMENT_CACHE_SIZE

    cache = _get_validate_cache(DOCUMENT_CACHE_SIZE)
    query = "query Repeated { viewer { apiKeyId } }"
    await api.graphql(query, key=org.secret)
    before = cache.cache_info()
    for _ in range(3):
        body = await api.graphql(query, key=org.secret)
        assert body["data"]["viewer"]["apiKeyId"]
    after = cache.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 3
