"""Client mistakes are BAD_USER_INPUT (or a userError) naming what is wrong, never INTERNAL (issue 11.6),
and one missing scope costs only its own root field (issue 11.10)."""

import json

import pytest
from graphql import GraphQLNonNull, GraphQLObjectType

from tests.conftest import make_org_with_key

SCHEDULE = "mutation($p: DateTime!, $tz: String) { schedulePost(input: {postId: \"post_x\", publishAt: $p, timezone: $tz}) { userErrors { field code } } }"


async def _raw(api, key: str, query: str, variables: dict) -> dict:
    """Variables sent as ASCII JSON, so a lone surrogate travels as the escape "\\ud800" a client would send."""
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _bad_user_input(body: dict, *named: str) -> dict:
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["extensions"]["requestId"]
    for name in named:
        assert name in error["message"], error["message"]
    return error


@pytest.mark.parametrize(
    "publish_at",
    ["tomorrow", "2026-06-01T09:00:00+25:00", "9999-12-31T23:59:00-23:59", "0001-01-01T00:00:00+23:59"],
    ids=["not-a-date", "offset-past-24h", "year-9999-minus-23-59", "year-1-plus-23-59"],
)
async def test_an_unusable_datetime_variable_is_bad_user_input_naming_it(api, org, publish_at):
    body = await _raw(api, org.secret, SCHEDULE, {"p": publish_at})
    _bad_user_input(body, "$p", "DateTime")


async def test_a_timezone_too_long_to_be_a_file_name_is_an_invalid_timezone(api, org):
    body = await _raw(api, org.secret, SCHEDULE, {"p": "2030-01-01T09:00:00", "tz": "A" * 10_000})
    assert "errors" not in body, body
    assert body["data"]["schedulePost"]["userErrors"] == [{"field": ["timezone"], "code": "INVALID_TIMEZONE"}]


@pytest.mark.parametrize(
    ("local", "zone", "code"),
    [("9999-12-31T23:00:00", "America/Los_Angeles", "PUBLISH_AT_TOO_FAR"), ("0001-01-01T00:30:00", "Asia/Tokyo", "PUBLISH_AT_IN_PAST")],
)
async def test_a_local_time_at_the_calendars_edge_is_a_user_error(api, org, local, zone, code):
    body = await _raw(api, org.secret, SCHEDULE, {"p": local, "tz": zone})
    assert body["data"]["schedulePost"]["userErrors"] == [{"field": ["publishAt"], "code": code}], body


async def test_null_for_a_required_json_argument_is_bad_user_input(api, org):
    query = 'mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { userErrors { code } } }'
    _bad_user_input(await _raw(api, org.secret, query, {"c": None}), "$c", "JSON!")
    inline = 'mutation($i: ConnectAccountInput!) { connectAccount(input: $i) { userErrors { code } } }'
    _bad_user_input(await _raw(api, org.secret, inline, {"i": {"provider": "sandbox", "credentials": None}}), "$i", "credentials")


async def test_an_upload_without_a_map_is_bad_user_input_naming_the_file(api, org):
    operations = json.dumps({"query": "mutation($f: Upload!) { uploadMedia(input: {file: $f}) { userErrors { code } } }", "variables": {"f": None}})
    response = await api.http.post(
        "/graphql", data={"operations": operations}, files={"0": ("a.png", b"x")}, headers={"authorization": f"Bearer {org.secret}"}
    )
    assert response.status_code == 200
    _bad_user_input(response.json(), "$f", "Upload!")


@pytest.mark.parametrize("text", ["\ud800", "ok\udfffok", "nul\x00"], ids=["lone-high-surrogate", "lone-low-surrogate", "nul"])
@pytest.mark.parametrize(
    ("query", "variables", "path"),
    [
        ("mutation($n: String!) { createOrganization(input: {name: $n}) { userErrors { code } } }", lambda t: {"n": t}, "n"),
        ("mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { userErrors { code } } }",
         lambda t: {"i": {"name": "Fine", "idempotencyKey": t}}, "i.idempotencyKey"),
        ("mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { userErrors { code } } }",
         lambda t: {"i": {"name": "Fine", "metadata": {"k": ["x", t]}}}, "i.metadata.k[1]"),
    ],
    ids=["name", "idempotency-key", "inside-json"],
)
async def test_text_no_database_can_store_is_bad_user_input_naming_where(api, org, text, query, variables, path):
    error = _bad_user_input(await _raw(api, org.secret, query, variables(text)))
    assert error["extensions"]["field"] == path
    async with api.runtime.database.read() as session:
        from sqlalchemy import func, select

        from gateway.storage.models import Organization

        assert await session.scalar(select(func.count()).select_from(Organization)) == 1  # nothing was created


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_subscription_over_a_plain_request_is_bad_user_input_naming_it(api, org, method):
    query = "subscription { orgEvents { kind } }"
    headers = {"authorization": f"Bearer {org.secret}"}
    if method == "POST":
        response = await api.http.post("/graphql", json={"query": query}, headers=headers)
    else:
        response = await api.http.get("/graphql", params={"query": query}, headers=headers)
    error = _bad_user_input(response.json(), "orgEvents", "text/event-stream")
    assert error["extensions"]["field"] == "orgEvents"


# Issue 11.10


async def test_a_missing_scope_nulls_only_its_own_root_field(api):
    reader = await make_org_with_key(api.runtime, scopes=["posts:read"])
    body = await api.graphql("{ posts(first: 5) { nodes { id } } accounts(first: 5) { nodes { id } } }", key=reader.secret)
    assert body["data"] == {"posts": {"nodes": []}, "accounts": None}
    [error] = body["errors"]
    assert error["path"] == ["accounts"] and error["extensions"]["code"] == "FORBIDDEN"


def test_every_root_query_field_is_nullable():
    from schema import build_schema

    query: GraphQLObjectType = build_schema()._schema.query_type
    non_null = [name for name, field in query.fields.items() if isinstance(field.type, GraphQLNonNull)]
    assert non_null == []


async def test_a_media_asset_id_that_names_nothing_is_null_like_a_post_id(api, org):
    body = await api.graphql('{ mediaAsset(id: "x") { id } post(id: "x") { id } }', key=org.secret)
    assert body["data"] == {"mediaAsset": None, "post": None} and "errors" not in body


def test_unstorable_text_in_a_websocket_subscriptions_variables_is_bad_user_input(settings):
    from starlette.testclient import TestClient

    from gateway.app import create_app

    app = create_app(settings)
    with TestClient(app) as client:
        org = client.portal.call(make_org_with_key, app.state.runtime)
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {org.secret}"}})
            assert socket.receive_json()["type"] == "connection_ack"
            query = "subscription($j: ID!) { jobEvents(jobId: $j) { kind } }"
            socket.send_text(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"j": "job_\ud800"}}}))
            reply = socket.receive_json()
    [error] = reply["payload"]["errors"] if reply["type"] == "next" else reply["payload"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "j", reply
