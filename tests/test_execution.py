"""The schema's executor (schema.execution): plain leaf fields take a shorter path than
graphql-core's, and every answer, error and path is what graphql-core's own path gives."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import GatewayExecution
from schema.scalars import SCALAR_OVERRIDES


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Thing:
    id: strawberry.ID
    name: str
    count: int
    ratio: float
    on: bool
    colour: Colour
    at: datetime
    maybe: str | None
    required_but_missing: str
    wrong_colour: Colour
    wrong_count: int

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times

    @property
    def broken(self) -> str:
        raise ValueError("this attribute cannot be read")


@strawberry.type
class BrokenThing(Thing):
    @strawberry.field
    def failing(self) -> str:
        raise RuntimeError("a resolver failed")


def _thing(n: int) -> BrokenThing:
    return BrokenThing(
        id=strawberry.ID(f"thing_{n}"), name=f"n{n}", count=n, ratio=n / 4, on=n % 2 == 0, colour=Colour.BLUE,
        at=datetime(2026, 1, n + 1, tzinfo=UTC), maybe=None if n % 2 else "m", required_but_missing=None,  # type: ignore[arg-type]
        wrong_colour="purple", wrong_count="many",  # type: ignore[arg-type]
    )


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[BrokenThing]:
        return [_thing(n) for n in range(3)]


QUERIES = {
    "plain leaves": "{ things { id name count ratio on colour at maybe } }",
    "aliases and arguments": "{ things { a: name b: name shout twice: shout(times: 2) } }",
    "null in a non-null field": "{ things { id requiredButMissing } }",
    "a value its enum does not know": "{ things { id wrongColour } }",
    "a value its scalar refuses": "{ things { id wrongCount } }",
    "a failing resolver": "{ things { id failing } }",
    "fragments": "{ things { ...parts } } fragment parts on BrokenThing { id ... on BrokenThing { colour at } }",
}


def _schema(context: type) -> strawberry.Schema:
    return strawberry.Schema(query=Query, scalar_overrides=SCALAR_OVERRIDES, execution_context_class=context)


@pytest.mark.parametrize("name", list(QUERIES))
async def test_the_short_path_answers_as_graphql_core_does(name):
    ours = await _schema(GatewayExecution).execute(QUERIES[name])
    theirs = await _schema(StrawberryGraphQLCoreExecutionContext).execute(QUERIES[name])
    assert ours.data == theirs.data
    assert [(e.message, e.path) for e in ours.errors or []] == [(e.message, e.path) for e in theirs.errors or []]


async def test_plain_leaves_build_no_resolve_info(monkeypatch):
    """The point of the short path: a leaf read from an attribute skips graphql-core's per-field
    machinery (its resolve info first of all); fields with arguments or resolvers keep it."""
    built: list[str] = []
    original = GatewayExecution.build_resolve_info

    def counting(self, field_def, field_nodes, parent_type, path):
        built.append(field_nodes[0].name.value)
        return original(self, field_def, field_nodes, parent_type, path)

    monkeypatch.setattr(GatewayExecution, "build_resolve_info", counting)
    result = await _schema(GatewayExecution).execute("{ things { id name colour at shout } }")
    assert result.errors is None and len(result.data["things"]) == 3
    assert sorted(set(built)) == ["shout", "things"]
