"""GraphQL over HTTP's two response media types (issue 23.1).

A client that accepts ``application/graphql-response+json`` gets it: a request error (the
document does not parse or validate, a variable cannot be coerced, a refusal before GraphQL runs)
is a 4xx without ``data``; a result of execution, errors in its fields included, is a 200 with
``data``. A client that asks for ``application/json``, or says nothing, keeps what it always got:
200 and ``"data": null`` for every GraphQL error. ``tests/test_graphql_http_audit.py`` runs the
specification's own audit suite against the real server.
"""

import httpx
import pytest

from gateway.core.http_errors import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, response_media_type
from tests.conftest import make_org_with_key

NEW = GRAPHQL_RESPONSE_JSON


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/json", APPLICATION_JSON),
        ("text/html", APPLICATION_JSON),  # nothing we serve: the specification lets us answer JSON
        (NEW, NEW),
        (f"{NEW}, application/json", NEW),
        (f"application/json, {NEW}", APPLICATION_JSON),  # a tie goes to the one listed first
        (f"{NEW};q=0.9, application/json", APPLICATION_JSON),
        (f"application/json;q=0.9, {NEW}", NEW),
        (f"{NEW};q=0, application/json", APPLICATION_JSON),
        (f"{NEW};q=0", APPLICATION_JSON),
        (f"*/*, {NEW}", NEW),  # named outright, it outranks a wildcard listed before it
        (f"*/*;q=0.8, {NEW};q=0.5", APPLICATION_JSON),
        ("Application/GraphQL-Response+JSON; charset=utf-8", NEW),
        (f"{NEW};q=nonsense, application/json", APPLICATION_JSON),
    ],
)
def test_the_response_media_type_follows_accept(accept, expected):
    assert response_media_type(accept) == expected


def _post(api, key: str, body: dict, accept: str | None):
    headers = {"authorization": f"Bearer {key}"}
    if accept is not None:
        headers["accept"] = accept
    return api.http.post("/graphql", json=body, headers=headers)


def _media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


REQUEST_ERRORS = {
    "parse": ({"query": "{"}, None),
    "validation": ({"query": "{ noSuchField }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variable-null": ({"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}}, None),
    "variable-type": ({"query": "query($n: Int) { posts(first: $n) { nodes { id } } }", "variables": {"n": "ten"}}, None),
    "page-size": ({"query": "{ posts(first: 500) { nodes { id } } }"}, "BAD_USER_INPUT"),
    "cost": ({"query": "{ " + " ".join(f"p{n}: posts(first: 100) {{ nodes {{ id }} }}" for n in range(11)) + " }"}, "MAX_COST_EXCEEDED"),
}


@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
async def test_a_request_error_in_graphql_response_json_is_a_400_without_data(api, org, case):
    body, code = REQUEST_ERRORS[case]
    response = await _post(api, org.secret, body, NEW)
    assert response.status_code == 400, response.text
    assert _media_type(response) == NEW
    assert "charset=utf-8" in response.headers["content-type"]
    assert "accept" in response.headers["vary"].lower()
    payload = response.json()
    assert "data" not in payload, payload
    assert payload["errors"] and all(error["extensions"]["requestId"] for error in payload["errors"])
    if code is not None:
        assert payload["errors"][0]["extensions"]["code"] == code, payload


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html", f"application/json, {NEW}"])
@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
async def test_a_request_error_in_application_json_stays_a_200_with_null_data(api, org, case, accept):
    body, code = REQUEST_ERRORS[case]
    response = await _post(api, org.secret, body, accept)
    assert response.status_code == 200, response.text
    assert _media_type(response) == APPLICATION_JSON
    payload = response.json()
    assert payload["data"] is None and payload["errors"], payload
    if code is not None:
        assert payload["errors"][0]["extensions"]["code"] == code, payload


async def test_an_execution_error_in_graphql_response_json_is_a_200_with_data(api):
    # Without the scope, `posts` errors alone (FORBIDDEN) and `viewer` still answers: execution ran.
    narrow = await make_org_with_key(api.runtime, "Narrow", ["accounts:read"])
    response = await _post(api, narrow.secret, {"query": "{ viewer { apiKeyId } posts { nodes { id } } }"}, NEW)
    assert response.status_code == 200, response.text
    assert _media_type(response) == NEW
    payload = response.json()
    assert payload["data"] == {"viewer": {"apiKeyId": narrow.api_key_id}, "posts": None}
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and error["path"] == ["posts"]


async def test_an_unauthenticated_field_in_graphql_response_json_is_a_200_with_data(api):
    response = await api.http.post("/graphql", json={"query": "{ viewer { apiKeyId } }"}, headers={"accept": NEW})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["data"] == {"viewer": None}
    assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_mutation_whose_payload_errors_is_a_200_with_null_data(api):
    """A non-null mutation field that fails nulls all the data: still a result of execution, so
    200 with ``"data": null`` — not a request error."""
    query = 'mutation { connectAccount(input: {provider: "sandbox", credentials: {handle: "h"}}) { account { id } userErrors { code } } }'
    reader = await make_org_with_key(api.runtime, "Reader", ["posts:read"])
    response = await _post(api, reader.secret, {"query": query}, NEW)
    payload = response.json()
    assert response.status_code == 200, response.text
    assert "data" in payload and payload["errors"][0]["path"] == ["connectAccount"], payload


async def test_a_success_in_graphql_response_json(api, org):
    response = await _post(api, org.secret, {"query": "{ viewer { apiKeyId } }"}, f"{NEW}, application/json;q=0.9")
    assert response.status_code == 200
    assert _media_type(response) == NEW
    assert response.json()["data"] == {"viewer": {"apiKeyId": org.api_key_id}}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 400, "BAD_REQUEST"),
        ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 400, "BAD_REQUEST"),
        ({"json": {"notquery": "{ __typename }"}}, 400, "BAD_REQUEST"),
        ({"json": {"query": "{ __typename }", "variables": "x"}}, 400, "BAD_REQUEST"),
        ({"json": [{"query": "{ __typename }"}]}, 400, "BAD_REQUEST"),
        ({"json": {"query": "query A { __typename }", "operationName": "B"}}, 400, "BAD_REQUEST"),
    ],
    ids=["not-json", "content-type", "no-query", "variables-string", "batch", "unknown-operation"],
)
async def test_a_refusal_before_graphql_runs_follows_accept_too(api, org, request_kwargs, status, code):
    headers = {"authorization": f"Bearer {org.secret}", **request_kwargs.pop("headers", {})}
    new = await api.http.post("/graphql", headers={**headers, "accept": NEW}, **request_kwargs)
    assert new.status_code == status and _media_type(new) == NEW, new.text
    assert "data" not in new.json() and new.json()["errors"][0]["extensions"]["code"] == code
    old = await api.http.post("/graphql", headers=headers, **request_kwargs)
    assert old.status_code == status and _media_type(old) == APPLICATION_JSON, old.text
    assert old.json()["data"] is None and old.json()["errors"][0]["extensions"]["code"] == code


async def test_a_mutation_over_get_is_a_405_in_either_media_type(api, org):
    for accept, media_type in ((NEW, NEW), ("application/json", APPLICATION_JSON)):
        response = await api.http.get(
            "/graphql", params={"query": "mutation { __typename }"}, headers={"accept": accept, "authorization": f"Bearer {org.secret}"}
        )
        assert response.status_code == 405 and _media_type(response) == media_type, response.text


async def test_a_body_over_the_limit_follows_accept(api, org):
    body = b'{"query": "{ __typename }", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    headers = {"content-type": "application/json", "authorization": f"Bearer {org.secret}"}
    new = await api.http.post("/graphql", content=body, headers={**headers, "accept": NEW})
    assert new.status_code == 413 and _media_type(new) == NEW and "data" not in new.json()
    old = await api.http.post("/graphql", content=body, headers=headers)
    assert old.status_code == 413 and _media_type(old) == APPLICATION_JSON and old.json()["data"] is None


async def test_a_rate_limited_request_is_a_429_with_retry_after_in_graphql_response_json(api, org):
    limiter = api.runtime.rate_limiter
    limiter.consume(org.api_key_id, limiter.tier.capacity)  # empty the bucket
    response = await _post(api, org.secret, {"query": "{ posts(first: 100) { nodes { id } } }"}, NEW)
    assert response.status_code == 429, response.text
    assert "data" not in response.json() and response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(response.headers["retry-after"]) >= 1
    old = await _post(api, org.secret, {"query": "{ posts(first: 100) { nodes { id } } }"}, "application/json")
    assert old.status_code == 200 and old.json()["data"] is None
