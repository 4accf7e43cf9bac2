"""Property-based: random values for every argument of every operation never produce INTERNAL (issue 11.6).

The schema is read back through introspection (as a client would see it), so an operation added later is fuzzed without
touching this file. Each operation is sent with one variable per argument; the values mix what
the argument's type allows (so resolvers run) with arbitrary JSON (so coercion runs), and both
with text no database can store, calendar edges and absurd lengths. Every answer must be a
GraphQL response whose errors all carry a code other than INTERNAL. Bounded and derandomized:
a fixed set of examples per operation, the same on every run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    build_client_schema,
    get_named_type,
    introspection_from_schema,
    is_leaf_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth.rate_limit import CostRateLimiter, Tier
from tests.conftest import make_org_with_key

EXAMPLES_PER_OPERATION = 30

NASTY_TEXT = ["", "\ud800", "a\udfffb", "nul\x00", "A" * 10_000, "tomorrow", "../../../etc/passwd", "Europe/Paris",
              "9999-12-31T23:59:00-23:59", "0001-01-01T00:00:00+23:59", "post_" + "a" * 24, "acct_x", "med_", "🙂" * 300]
DATETIMES = ["2030-01-01T09:00:00+02:00", "2030-01-01T09:00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
             "2026-02-30T00:00:00Z", "+25:00", "2030-01-01T09:00:00+25:00"]

text = st.one_of(st.text(st.characters(exclude_categories=()), max_size=40), st.sampled_from(NASTY_TEXT))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)

SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "Int": st.integers(min_value=-(2**31), max_value=2**31 - 1) | st.sampled_from([-100_000, -1, 0, 1, 100, 101, 2**40]),
    "Float": st.floats(allow_nan=False, allow_infinity=False),
    "Boolean": st.booleans(),
    "String": text,
    "ID": text,
    "DateTime": st.sampled_from(DATETIMES) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | text,
    "JSON": json_values,
    "Upload": st.none() | text,
}


def values_for(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    """Mostly what the type allows, sometimes anything at all."""
    return st.one_of(_typed(type_), _typed(type_), _typed(type_), json_values)


def _typed(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    if isinstance(type_, GraphQLNonNull):
        return _typed(type_.of_type)
    if isinstance(type_, GraphQLList):
        return st.lists(values_for(type_.of_type), max_size=4)
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from(sorted(type_.values)) | text
    if isinstance(type_, GraphQLInputObjectType):
        required = {name: values_for(f.type) for name, f in type_.fields.items() if isinstance(f.type, GraphQLNonNull)}
        optional = {name: values_for(f.type) for name, f in type_.fields.items() if not isinstance(f.type, GraphQLNonNull)}
        return st.fixed_dictionaries(required, optional=optional)
    assert isinstance(type_, GraphQLScalarType)
    return SCALARS.get(type_.name, json_values)


def _operations() -> list[tuple[str, str, Any]]:
    """(operation, field, field definition) for every root field that takes arguments."""
    from schema import build_schema

    schema = build_client_schema(introspection_from_schema(build_schema()._schema))
    roots = (("query", schema.query_type), ("mutation", schema.mutation_type), ("subscription", schema.subscription_type))
    return [(kind, name, field) for kind, root in roots if root for name, field in root.fields.items() if field.args]


OPERATIONS = _operations()


def _document(kind: str, name: str, field: Any) -> str:
    names = list(field.args)
    declared = ", ".join(f"$a{i}: {field.args[arg].type}" for i, arg in enumerate(names))
    passed = ", ".join(f"{arg}: $a{i}" for i, arg in enumerate(names))
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{kind} Fuzz({declared}) {{ {name}({passed}){selection} }}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from starlette.testclient import TestClient

    from gateway.app import create_app
    from gateway.settings import load_settings

    directory = tmp_path_factory.mktemp("fuzz")
    app = create_app(load_settings(database_url=f"sqlite+aiosqlite:///{directory}/fuzz.db", data_dir=str(directory)))
    with TestClient(app) as client:
        runtime = app.state.runtime
        # The point is what each input does, not the caller's budget: a bucket that never runs dry.
        runtime.rate_limiter = CostRateLimiter(Tier("fuzz", capacity=1e12, restore_rate=1e12))
        org = client.portal.call(make_org_with_key, runtime)
        yield client, org.secret


@pytest.mark.parametrize(("kind", "name", "field"), OPERATIONS, ids=[f"{kind}.{name}" for kind, name, _ in OPERATIONS])
def test_no_argument_value_is_an_internal_error(gateway, kind, name, field):
    client, key = gateway
    document = _document(kind, name, field)
    arguments = list(field.args.values())

    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.tuples(*(values_for(argument.type) for argument in arguments)))
    def check(values: tuple[Any, ...]) -> None:
        variables = {f"a{i}": value for i, value in enumerate(values)}
        body = json.dumps({"query": document, "variables": variables}).encode()  # ASCII: surrogates travel as escapes
        response = client.post("/graphql", content=body, headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
        assert response.status_code < 500, response.text
        errors = response.json().get("errors") or []
        codes = [(error.get("extensions") or {}).get("code") for error in errors]
        assert "INTERNAL" not in codes and None not in codes, f"{document}\n{json.dumps(variables)[:2000]}\n→ {response.text[:2000]}"

    check()
