"""Property-based fuzzing of the whole GraphQL schema against the real server (bounded).

Schemathesis generates valid and edge-case documents for every root field and mutation; none
may produce a 5xx or an INTERNAL error — bad input must always come back as a userError or a
coded error. The operations are read from the schema at collection time, so each is its own test
(``test_no_input_causes_a_server_error[POST /graphql Mutation.uploadMedia]``) and
``test_every_operation_is_fuzzed`` fails if one were ever left out. Our custom scalars (JSON,
DateTime, Upload) have strategies of their own, so the operations taking them are fuzzed too.
Subscriptions are fuzzed over HTTP by ``tests/test_fuzz_arguments.py``.
"""

import re

import httpx
import pytest
import schemathesis
from graphql import introspection_from_schema
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from schema import build_schema
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
# Calendar edges: valid ISO 8601 whose UTC time is outside years 1..9999, an offset past 24 hours.
_datetime_edges = ["9999-12-31T23:59:00-23:59", "0001-01-01T00:00:00+23:59", "2030-01-01T09:00:00+25:00", "tomorrow"]
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: nodes.String(d.isoformat())),
        st.sampled_from(_datetime_edges).map(nodes.String),
        st.text(max_size=25).map(nodes.String),
    ),
)
# Money in minor units: 64-bit edges and past them, as integers and as strings, and junk.
_int64_edges = [2**63 - 1, -(2**63), 2**63, 2**64, 0]
schemathesis.graphql.scalar(
    "Int64",
    st.one_of(
        st.integers().map(nodes.Int),
        st.sampled_from(_int64_edges).map(nodes.Int),
        st.sampled_from(_int64_edges).map(lambda n: nodes.String(str(n))),
        st.text(max_size=25).map(nodes.String),
    ),
)
# A document cannot carry a file: an Upload argument gets null or text, which must be refused cleanly.
schemathesis.graphql.scalar("Upload", st.one_of(st.just(nodes.Null), st.text(max_size=20).map(nodes.String)))

GRAPHQL = build_schema()._schema
SCHEMA = schemathesis.graphql.from_dict(introspection_from_schema(GRAPHQL))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("schemathesis")
    with serve(workdir, "--demo") as server:
        key = re.search(r"sg_live_[A-Za-z0-9]{44}", server.stdout()).group(0)
        yield server, key


@SCHEMA.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case, live):
    server, key = live
    response = case.call(base_url=server.base_url + "/graphql", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, response.text
    body = response.json()
    internal = [e for e in body.get("errors") or [] if (e.get("extensions") or {}).get("code") == "INTERNAL"]
    assert not internal, f"{case.body}\n→ {body}\n{server.stderr()[-3000:]}"
    assert all((e.get("extensions") or {}).get("code") for e in body.get("errors") or []), body


def test_every_operation_is_fuzzed():
    fuzzed = {result.ok().label for result in SCHEMA.get_all_operations()}
    roots = (GRAPHQL.query_type, GRAPHQL.mutation_type)
    assert fuzzed == {f"{root.name}.{field}" for root in roots for field in root.fields}


def test_the_server_survived(live):
    server, key = live
    assert httpx.get(server.base_url + "/readyz").status_code == 200
