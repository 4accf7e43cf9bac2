"""The schema's executor (schema.execution): plain leaf fields take a shorter path than
graphql-core's, and every answer, error and path is what graphql-core's own path gives."""

from __future__ import annotations

import enum
import inspect
from datetime import UTC, datetime

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import GatewayExecution
from schema.plans import PLAIN
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


# -- whole objects by their plan (schema.plans) ---------------------------------------------------


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Part(Named):
    id: strawberry.ID
    size: int
    label: str | None


@strawberry.type
class Box:
    id: strawberry.ID
    parts: list[Part]
    maybe_parts: list[Part | None] | None
    first: Part | None
    required_part: Part
    named: Named
    stored: strawberry.Private[list[Part]]

    @strawberry.field(metadata=PLAIN)
    def kind(self) -> Colour:
        return Colour.RED if len(self.parts) % 2 else Colour.BLUE

    @strawberry.field(metadata=PLAIN)
    def owner(self, info: strawberry.Info) -> str:
        return f"{info.context['owner']}:{self.id}"

    @strawberry.field(metadata=PLAIN)
    def loaded(self, info: strawberry.Info) -> list[Part]:
        if info.context.get("preloaded"):
            return self.stored
        loading = self._load()
        info.context.setdefault("coroutines", []).append(loading)
        return loading  # type: ignore[return-value]  # a coroutine, as the read-ahead fallbacks return

    async def _load(self) -> list[Part]:
        return self.stored

    @strawberry.field(metadata=PLAIN)
    def refused(self, info: strawberry.Info) -> str:
        if info.context.get("refuse"):
            raise PermissionError("needs boxes:read")
        return "allowed"

    @strawberry.field
    def unmarked(self) -> str:
        return f"unmarked {self.id}"


def _part(n: int, label: str | None = "l") -> Part:
    return Part(id=strawberry.ID(f"part_{n}"), name=f"p{n}", size=n, label=label)


def _box(n: int) -> Box:
    parts = [_part(n * 10 + k, None if k == 1 else f"l{k}") for k in range(n + 1)]
    return Box(
        id=strawberry.ID(f"box_{n}"), parts=parts, maybe_parts=[parts[0], None] if n == 1 else None,
        first=parts[0] if n else None, required_part=None if n == 2 else parts[0],  # type: ignore[arg-type]
        named=parts[0], stored=parts,
    )


@strawberry.type
class BoxQuery:
    @strawberry.field
    def boxes(self) -> list[Box]:
        return [_box(n) for n in range(2)]

    @strawberry.field
    def all_boxes(self) -> list[Box]:
        return [_box(n) for n in range(3)]


PLANNED = {
    "nested objects, lists, nulls and enums": "{ boxes { id kind parts { id size label } maybePartsNull: maybeParts { id } first { id } } }",
    "typename, aliases and merged fields": "{ boxes { __typename a: id id parts { __typename size } parts { id } } }",
    "a resolver that reads the context": "{ boxes { owner loaded { id } } }",
    "an interface inside a planned object": "{ boxes { id named { name ... on Part { size } } } }",
    "a resolver without the plain mark": "{ boxes { id unmarked parts { id } } }",
    "a null where the schema promises an object": "{ allBoxes { id requiredPart { id } } }",
    "a resolver that raises": "{ boxes { id refused parts { id } } }",
    "skip and include by variable": "query($no: Boolean!) { boxes { id parts @skip(if: $no) { id } kind @include(if: $no) } }",
    "a fragment on the object": "{ boxes { ...box } } fragment box on Box { id parts { ... on Part { id size } } }",
}


def _box_schema(context: type) -> strawberry.Schema:
    return strawberry.Schema(query=BoxQuery, types=[Part], scalar_overrides=SCALAR_OVERRIDES, execution_context_class=context)


@pytest.mark.parametrize("preloaded", [True, False], ids=["read ahead", "loaded"])
@pytest.mark.parametrize("refuse", [False, True], ids=["allowed", "refused"])
@pytest.mark.parametrize("name", list(PLANNED))
async def test_a_planned_object_answers_as_graphql_core_does(name, preloaded, refuse):
    context = {"owner": "o", "preloaded": preloaded, "refuse": refuse}
    variables = {"no": True}
    ours = await _box_schema(GatewayExecution).execute(PLANNED[name], context_value=context, variable_values=variables)
    # Each coroutine a plain resolver returned was either awaited or closed, never left to warn "never awaited".
    assert {inspect.getcoroutinestate(c) for c in context.get("coroutines", [])} <= {inspect.CORO_CLOSED}
    theirs = await _box_schema(StrawberryGraphQLCoreExecutionContext).execute(
        PLANNED[name], context_value=dict(context, coroutines=[]), variable_values=variables
    )
    assert ours.data == theirs.data
    assert [(e.message, e.path) for e in ours.errors or []] == [(e.message, e.path) for e in theirs.errors or []]


async def test_a_plain_selection_is_completed_without_graphql_cores_per_field_machinery(monkeypatch):
    """The point of a plan: every box, part, enum and context-reading resolver of the selection is
    completed without graphql-core's value completion; a resolver asking for info gets one per
    execution, not one per object."""
    completed: list[str] = []
    built: list[str] = []
    original_complete = GatewayExecution.complete_value
    original_info = GatewayExecution.build_resolve_info

    def counting_complete(self, return_type, field_details_list, *args):
        completed.append(field_details_list[0].node.name.value)
        return original_complete(self, return_type, field_details_list, *args)

    def counting_info(self, field_def, field_nodes, parent_type, path):
        built.append(field_nodes[0].name.value)
        return original_info(self, field_def, field_nodes, parent_type, path)

    monkeypatch.setattr(GatewayExecution, "complete_value", counting_complete)
    monkeypatch.setattr(GatewayExecution, "build_resolve_info", counting_info)
    result = await _box_schema(GatewayExecution).execute(
        "{ boxes { id kind owner loaded { id } parts { id size label } first { id } } }",
        context_value={"owner": "o", "preloaded": True},
    )
    assert result.errors is None and [len(box["parts"]) for box in result.data["boxes"]] == [1, 2]
    assert set(completed) == {"boxes"}  # the root field's list and its items; everything below them by the plan
    assert sorted(built) == ["boxes", "loaded", "owner"]


COUNTED_CALLS: list[str] = []


@strawberry.type
class Counted:
    id: strawberry.ID

    @strawberry.field
    def counted(self) -> str:
        COUNTED_CALLS.append(self.id)
        return "seen"


@strawberry.type
class CountedQuery:
    @strawberry.field
    def items(self) -> list[Counted]:
        return [Counted(id=strawberry.ID(f"c{n}")) for n in range(3)]


async def test_an_unplanned_resolver_still_runs_once_per_object():
    """A field without the plain mark keeps the ordinary path, so it is never called twice."""
    COUNTED_CALLS.clear()
    schema = strawberry.Schema(query=CountedQuery, execution_context_class=GatewayExecution)
    result = await schema.execute("{ items { id counted } }")
    assert result.errors is None and COUNTED_CALLS == ["c0", "c1", "c2"]


def test_a_plan_is_found_only_by_the_selection_it_was_built_for():
    """Plans are kept by their selection's identity, holding the selection: one freed during an
    execution (the root's) cannot lend its id to a later one, which would be answered by a plan
    that is not its own."""
    from graphql import parse
    from graphql.execution.collect_fields import FieldDetails

    from schema.plans import PlanBuilder

    schema = _box_schema(GatewayExecution)._schema
    part = schema.get_type("Part")

    def selection(*names):
        document = parse("{ " + " ".join(names) + " }")
        return {node.name.value: [FieldDetails(node, None)] for node in document.definitions[0].selection_set.selections}

    from types import SimpleNamespace

    builder = PlanBuilder(execution=SimpleNamespace(operation=SimpleNamespace(loc=None)))  # plans of its own only
    first = selection("id", "size")
    assert [name for name, _ in builder.plan(part, first).entries] == ["id", "size"]
    del first  # without the plan holding it, the next selection is very likely to take its id
    for _ in range(50):
        later = selection("label")
        assert [name for name, _ in builder.plan(part, later).entries] == ["label"]


def _shared_schema() -> strawberry.Schema:
    from strawberry.extensions import ParserCache

    return strawberry.Schema(
        query=BoxQuery, types=[Part], scalar_overrides=SCALAR_OVERRIDES, execution_context_class=GatewayExecution, extensions=[ParserCache]
    )


async def test_an_operations_plans_serve_its_later_executions_unless_bound_or_directed(monkeypatch):
    """The parser's cache hands back the same operation for the same text, and its plans serve
    every execution of it; a plan that passes an execution's Info on (``owner``) is built for each,
    and so is every plan of an operation with a directive, which variables may decide."""
    from schema.plans import PlanBuilder

    built: list[str] = []
    original = PlanBuilder._build
    monkeypatch.setattr(PlanBuilder, "_build", lambda self, kind, selection: built.append(kind.name) or original(self, kind, selection))
    schema, context = _shared_schema(), {"owner": "o", "preloaded": True}

    async def run(document: str, **variables: object) -> tuple[object, list[str]]:
        built.clear()
        result = await schema.execute(document, context_value=context, variable_values=variables)
        assert result.errors is None
        return result.data, list(built)

    unbound = "{ boxes { id kind parts { id size label } } }"
    first, first_built = await run(unbound)
    assert first_built == ["BoxQuery", "Box", "Part"]  # the root's resolvers are not plain: no plan, every time
    assert await run(unbound) == (first, [])  # the same answer, from the plans of the first
    bound = "{ boxes { id owner parts { id } } }"
    answer, bound_built = await run(bound)
    assert bound_built == ["BoxQuery", "Box", "Part"]
    assert await run(bound) == (answer, ["Box"])  # the boxes' plan again; their parts' is shared
    directed = "query($with: Boolean!) { boxes { id parts @include(if: $with) { id } } }"
    with_parts, built_with = await run(directed, **{"with": True})
    without_parts, built_without = await run(directed, **{"with": False})
    assert built_with and built_without
    assert all("parts" in box for box in with_parts["boxes"]) and not any("parts" in box for box in without_parts["boxes"])
