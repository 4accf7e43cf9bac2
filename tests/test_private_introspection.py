"""``SOCIALGATE_PUBLIC_INTROSPECTION=false``: no schema for callers without a valid key (issue 23.4).

Off, a caller without a valid key gets neither introspection (``__schema``, ``__type``, in any
fragment) nor GraphiQL, nor the field names graphql-core suggests in validation errors; a caller
with a key gets all of it. On (the default), everyone introspects, as before.
"""

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.auth.keys import set_key_disabled
from gateway.settings import SettingsError, load_settings
from tests.conftest import ApiClient, make_org_with_key
from tests.lifespan import lifespan_of

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "Post") { fields { name } } }'
HIDDEN_IN_A_FRAGMENT = "query { ...q } fragment q on Query { __type(name: \"Post\") { name } }"
TYPENAME = "{ __typename }"
HTML = {"accept": "text/html"}


@pytest.fixture
async def private_api(tmp_path) -> AsyncIterator[ApiClient]:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), public_introspection=False
    )
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield ApiClient(http=http, runtime=app.state.runtime)


def test_the_setting_reads_the_environment(monkeypatch):
    assert load_settings().public_introspection is True
    monkeypatch.setenv("SOCIALGATE_PUBLIC_INTROSPECTION", "false")
    assert load_settings().public_introspection is False
    monkeypatch.setenv("SOCIALGATE_PUBLIC_INTROSPECTION", "maybe")
    with pytest.raises(SettingsError, match="SOCIALGATE_PUBLIC_INTROSPECTION"):
        load_settings()


@pytest.mark.parametrize("query", [SCHEMA, TYPE, HIDDEN_IN_A_FRAGMENT], ids=["schema", "type", "fragment"])
async def test_introspection_without_a_key_is_refused_when_private(private_api, query):
    body = await private_api.graphql(query)
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "introspection" in error["message"]
    assert error["locations"]


async def test_a_key_that_does_not_stand_counts_as_none(private_api):
    org = await make_org_with_key(private_api.runtime)
    assert (await private_api.graphql(SCHEMA, key="sg_live_" + "x" * 44))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with private_api.runtime.database.write() as session:
        await set_key_disabled(session, org.api_key_id, True)
    body = await private_api.graphql(SCHEMA, key=org.secret)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_introspection_with_a_key_is_answered_when_private(private_api):
    org = await make_org_with_key(private_api.runtime)
    for query in (SCHEMA, TYPE, HIDDEN_IN_A_FRAGMENT):
        body = await private_api.graphql(query, key=org.secret)
        assert "errors" not in body, body
    assert (await private_api.graphql(SCHEMA, key=org.secret))["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_typename_and_the_keyless_errors_stay_without_a_key(private_api):
    assert (await private_api.graphql(TYPENAME))["data"] == {"__typename": "Query"}
    viewer = await private_api.graphql("{ viewer { apiKeyId } }")
    assert viewer["data"] == {"viewer": None} and viewer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_validation_errors_suggest_no_field_names_without_a_key(private_api):
    org = await make_org_with_key(private_api.runtime)
    typo = "{ post { id } postz { id } }"
    keyless = await private_api.graphql(typo)
    messages = " ".join(e["message"] for e in keyless["errors"])
    assert "Cannot query field 'postz'" in messages and "Did you mean" not in messages, messages
    # A caller with a key still gets the suggestion, from the same cached validation.
    keyed = await private_api.graphql(typo, key=org.secret)
    assert "Did you mean" in " ".join(e["message"] for e in keyed["errors"])
    again = await private_api.graphql(typo)
    assert "Did you mean" not in " ".join(e["message"] for e in again["errors"])


async def test_graphiql_without_a_key_is_refused_when_private(private_api):
    page = await private_api.http.get("/graphql", headers=HTML)
    assert page.status_code == 401, page.text
    assert page.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    org = await make_org_with_key(private_api.runtime)
    keyed = await private_api.http.get("/graphql", headers={**HTML, "authorization": f"Bearer {org.secret}"})
    assert keyed.status_code == 200 and "graphiql" in keyed.text.lower()


async def test_introspection_and_graphiql_are_public_by_default(api):
    body = await api.graphql(SCHEMA)
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    assert "Did you mean" in (await api.graphql("{ postz { id } }"))["errors"][0]["message"]
    page = await api.http.get("/graphql", headers=HTML)
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_private_introspection_over_graphql_response_json_is_a_401(private_api):
    response = await private_api.http.post(
        "/graphql", json={"query": SCHEMA}, headers={"accept": "application/graphql-response+json"}
    )
    assert response.status_code == 401 and "data" not in response.json(), response.text
