"""Property-based fuzzing of the whole GraphQL schema against the real server (bounded).

Schemathesis generates valid and edge-case documents for every root field and mutation; none
may produce a 5xx or an INTERNAL error — bad input must always come back as a userError or a
coded error.
"""

import re

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from tests.servers import serve

pytestmark = pytest.mark.e2e


def graphql_field(name, value):
    from graphql import NameNode, ObjectFieldNode

    # GraphQL object keys must be names; JSON keys need not be, so keep only the valid ones' shape.
    safe = re.sub(r"[^_A-Za-z0-9]", "_", name) or "_"
    if safe[0].isdigit():
        safe = "_" + safe
    return ObjectFieldNode(name=NameNode(value=safe), value=value)

MAX_EXAMPLES = 12

# Our custom scalars: well-formed values and near misses alike.
_json_leaf = st.one_of(st.text(max_size=30).map(nodes.String), st.integers().map(nodes.Int), st.booleans().map(nodes.Boolean))
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        _json_leaf,
        st.dictionaries(st.text(min_size=1, max_size=45), _json_leaf, max_size=4).map(
            lambda d: nodes.Object([graphql_field(k, v) for k, v in d.items()])
        ),
    ),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(st.datetimes().map(lambda d: nodes.String(d.isoformat())), st.text(max_size=25).map(nodes.String)),
)
schemathesis.graphql.scalar("Upload", st.just(nodes.Null))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("schemathesis")
    with serve(workdir, "--demo") as server:
        key = re.search(r"sg_live_[A-Za-z0-9]{44}", server.stdout()).group(0)
        yield server, key


@pytest.fixture(scope="module")
def graphql_schema(live):
    server, _ = live
    return schemathesis.graphql.from_url(server.base_url + "/graphql")


schema = schemathesis.pytest.from_fixture("graphql_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case, live):
    server, key = live
    response = case.call(headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, response.text
    body = response.json()
    internal = [e for e in body.get("errors") or [] if (e.get("extensions") or {}).get("code") == "INTERNAL"]
    assert not internal, f"{case.body}\n→ {body}\n{server.stderr()[-3000:]}"
    assert all((e.get("extensions") or {}).get("code") for e in body.get("errors") or []), body


def test_the_server_survived(live):
    server, key = live
    assert httpx.get(server.base_url + "/readyz").status_code == 200
