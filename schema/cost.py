"""Query cost, Shopify-style: what a query may touch, computed before it runs.

An object field costs 1 plus its children; a scalar costs nothing; a connection costs its page
size (``first``/``last``, default 20) times the cost of one node, plus ``COUNT_COST`` when its
``totalCount`` is selected (one count, whatever the page size); ``nodes(ids:)`` costs the number
of its ids times the cost of one ``node``. A query above ``MAX_COST`` is refused; otherwise its
cost is drawn from the key's rate-limit bucket, and the response reports both in
``extensions.cost``.

Page sizes (and the number of ``ids``) are checked here, before anything is priced, not only by the resolver: a negative
``first`` would otherwise price its field below zero, and a query costing less than nothing
would pay points back into the caller's bucket (issue 11, "a negative page size switches off the
cost limit and the rate limit"). No field is ever priced below zero.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from cachetools import LRUCache
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from strawberry.extensions import SchemaExtension

from gateway.core import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, BadInput, RateLimited, ServiceError

MAX_COST = 1_000
# A connection's totalCount: one SELECT count(*), priced like one object.
COUNT_COST = 1
COUNT_FIELD = "totalCount"
# ``nodes(ids:)`` takes as many ids as a page has items (schema.relay.MAX_NODES).
MAX_IDS = MAX_PAGE_SIZE
# Costs of documents whose price does not depend on their variables, by text and operation: the
# same dashboard query every few seconds, or a mutation whose variables are its input, is priced
# once, not walked again (a walk was 4% of a page of posts, and 3% of a createPost).
COST_CACHE_SIZE = 512
IDS_ARGUMENT = "ids"


class QueryCostExceeded(ServiceError):
    code = "MAX_COST_EXCEEDED"


PAGE_ARGUMENTS = ("first", "last")


def _argument_value(value: ValueNode, variables: dict[str, Any], defaults: dict[str, ValueNode]) -> Any:
    """An argument's value as the resolver will see it: a literal, a variable, or the variable's default."""
    if isinstance(value, VariableNode):
        name = value.name.value
        if name in variables:
            return variables[name]
        value = defaults.get(name)  # type: ignore[assignment]
    if isinstance(value, IntValueNode):
        return int(value.value)
    return None


def _page_size(field: FieldNode, variables: dict[str, Any], defaults: dict[str, ValueNode]) -> int:
    """The largest page a connection field asks for; refused unless 0 ≤ size ≤ MAX_PAGE_SIZE."""
    size: int | None = None
    for argument in field.arguments or ():
        name = argument.name.value
        if name not in PAGE_ARGUMENTS:
            continue
        value = _argument_value(argument.value, variables, defaults)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # GraphQL's Int accepts 5.0 as 5, so the resolver would see it
        if not isinstance(value, int) or isinstance(value, bool):
            continue  # null means the default; any other type is refused when variables are coerced
        if not 0 <= value <= MAX_PAGE_SIZE:
            raise BadInput(f"`{name}` of `{field.name.value}` must be between 0 and {MAX_PAGE_SIZE}.", name)
        size = value if size is None else max(size, value)
    return DEFAULT_PAGE_SIZE if size is None else size


def _id_count(field: FieldNode, variables: dict[str, Any], defaults: dict[str, ValueNode]) -> int | None:
    """How many ids an ``ids`` argument holds (None without one); refused above MAX_IDS."""
    for argument in field.arguments or ():
        if argument.name.value != IDS_ARGUMENT:
            continue
        value: Any = argument.value
        if isinstance(value, VariableNode):
            name = value.name.value
            value = variables[name] if name in variables else defaults.get(name)
        if isinstance(value, ListValueNode):
            number = len(value.values)
        elif isinstance(value, (list, tuple)):
            number = len(value)
        else:
            number = 0 if value is None else 1  # a single value stands for a list of one
        if number > MAX_IDS:
            raise BadInput(f"`{IDS_ARGUMENT}` of `{field.name.value}` takes at most {MAX_IDS} ids; {number} were sent.", IDS_ARGUMENT)
        return number
    return None


def _is_connection(named: Any) -> bool:
    """A cursor connection: a type with a page of edges. Its name says less — the OAuth handshake
    is a type called ``Connection``, one object, which was priced as a page of twenty."""
    return isinstance(named, GraphQLObjectType) and "pageInfo" in named.fields and "edges" in named.fields


class CostCalculator:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        defaults: dict[str, ValueNode] | None = None,
    ):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults or {}

    def _fields(self, selection_set: SelectionSetNode, parent: Any, seen: frozenset[str]) -> Iterator[tuple[FieldNode, Any]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                condition = self.schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                yield from self._fields(selection.selection_set, condition or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    condition = self.schema.get_type(fragment.type_condition.name.value) or parent
                    yield from self._fields(fragment.selection_set, condition, seen | {name})

    def _selects(self, selection_set: SelectionSetNode | None, parent: Any, name: str, seen: frozenset[str]) -> bool:
        """Whether the selection (its fragments included) asks for the field ``name`` of ``parent``."""
        if selection_set is None:
            return False
        return any(field.name.value == name for field, _owner in self._fields(selection_set, parent, seen))

    def cost(self, selection_set: SelectionSetNode | None, parent: Any, seen: frozenset[str] = frozenset()) -> int:
        if selection_set is None:
            return 0
        total = 0
        for field, owner in self._fields(selection_set, parent, seen):
            definition = owner.fields.get(field.name.value) if hasattr(owner, "fields") else None
            if definition is None:  # __typename, or a field of an abstract type resolved later
                continue
            named = get_named_type(definition.type)
            if is_leaf_type(named):
                continue
            children = self.cost(field.selection_set, named, seen)
            ids = _id_count(field, self.variables, self.defaults)
            if _is_connection(named):
                total += _page_size(field, self.variables, self.defaults) * max(1, children)
                if self._selects(field.selection_set, named, COUNT_FIELD, seen):
                    total += COUNT_COST
            elif ids is not None:
                total += ids * (1 + children)
            else:
                total += 1 + children
        return max(0, total)


class ConsultedVariables(dict[str, Any]):
    """An operation's variables, noting whether the cost walk looked any up. The walk reads a
    variable only through ``in`` (page sizes and ids): a walk that looked none up prices the
    document the same whatever its variables are."""

    consulted = False

    def __contains__(self, name: object) -> bool:
        self.consulted = True
        return super().__contains__(name)


def operation_cost(schema: GraphQLSchema, document: Any, operation_name: str | None, variables: dict[str, Any]) -> int:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if not operations:
        return 0
    operation = operations[0]
    root: GraphQLObjectType | None = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    defaults = {
        definition.variable.name.value: definition.default_value
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    return CostCalculator(schema, fragments, variables, defaults).cost(operation.selection_set, root)


_COSTS: LRUCache[tuple[str, str | None], int] = LRUCache(maxsize=COST_CACHE_SIZE)


class QueryCost(SchemaExtension):
    """Refuses over-costly queries, draws the cost from the caller's bucket, reports both."""

    def __init__(self) -> None:
        self.report: dict[str, Any] | None = None

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and not context.pre_execution_errors:
            failure = await self._admit()
            if failure is not None:
                context.result = GraphQLExecutionResult(
                    data=None, errors=[GraphQLError(failure.message, original_error=failure)]
                )
        yield

    async def _admit(self) -> ServiceError | None:
        context = self.execution_context
        try:
            cost = self._cost_of(context)
        except BadInput as error:
            return error
        runtime = context.context.runtime
        limiter = runtime.rate_limiter
        self.report = {"requestedQueryCost": cost, "maximumCost": MAX_COST}
        if cost > MAX_COST:
            return QueryCostExceeded(f"The query costs {cost}, above the maximum of {MAX_COST}; ask for smaller pages.")
        principal = context.context.principal_or_error
        if isinstance(principal, ServiceError):
            return None  # the resolvers report the authentication error
        decision = await limiter.acquire(principal.api_key_id, cost)  # shared by every process with Redis
        self.report["throttleStatus"] = {
            "maximumAvailable": limiter.tier.capacity,
            "currentlyAvailable": round(decision.remaining, 2),
            "restoreRate": limiter.tier.restore_rate,
        }
        if not decision.allowed:
            return RateLimited(
                f"This query costs {cost} and {decision.remaining:.0f} points are available.", decision.retry_after
            )
        return None

    @staticmethod
    def _cost_of(context: Any) -> int:
        """The operation's cost, looked up by its text first: kept when the walk consulted no variable."""
        key = (context.query, context.operation_name) if context.query else None
        if key is not None and key in _COSTS:
            return _COSTS[key]
        variables = ConsultedVariables(context.variables or {})
        cost = operation_cost(context.schema._schema, context.graphql_document, context.operation_name, variables)
        if key is not None and not variables.consulted:
            _COSTS[key] = cost
        return cost

    def get_results(self) -> dict[str, Any]:
        # A subscription's cost was paid when it started; repeating it in every event would
        # cost each of a thousand subscribers a dict and its JSON per event.
        if not self.report or self.execution_context.operation_type == OperationType.SUBSCRIPTION:
            return {}
        return {"cost": self.report}
