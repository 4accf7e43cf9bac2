"""Execution plans: an object's whole selection completed in one tight loop when every field is plain.

graphql-core completes a value field by field through about a dozen calls each (resolve info,
argument check, ``complete_value``, ``complete_object_value``, ``is_type_of``, subfield collection,
the awaitable bookkeeping of ``execute_fields``), so a page of 20 posts with their targets and
accounts spent half the request's CPU in the executor itself. A plan is built once per selection
set per request, from graphql-core's own field collection (directives, fragments and aliases are
already applied there), and then completes every object of that selection:

- a field without a resolver reads its attribute (strawberry's default resolver, ``getattr``);
- a resolver declared ``metadata=PLAIN`` is called with the object (and a shared ``Info`` when it
  asks for one); PLAIN promises a synchronous function that reads only ``info.context`` and may be
  called again with the same answer;
- a scalar or enum is coerced as ``complete_leaf_value`` would, an object (or a list of them) is
  completed by the plan of its own selection.

Anything a plan cannot finish exactly as graphql-core would (a field with arguments, an interface,
a ``@defer``, a null where the schema promises a value, an exception, an awaitable, a value that
does not coerce) abandons the plan for that object, which then goes the ordinary way from scratch.
Errors, paths and nulls are therefore always graphql-core's own. ``tests/test_execution.py`` holds
both ways to the same answers.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

from cachetools import LRUCache
from graphql import (
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
    specified_scalar_types,
)
from strawberry.types import Info

# Metadata of a strawberry field whose resolver a plan may call (see the module docstring).
PLAIN_KEY = "socialgate.plain"
PLAIN: dict[str, Any] = {PLAIN_KEY: True}

_STRAWBERRY_FIELD = "strawberry-definition"


class Abandon(Exception):  # noqa: N818 — a signal, not an error: the ordinary executor takes over
    """The plan cannot finish this object exactly as graphql-core would."""


_ABANDON = Abandon()

Getter = Callable[[Any], Any]
Completer = Callable[[Any], Any]


class ObjectPlan:
    """How to complete one selection set of one object type: (response name, field) per field, where
    a field reads and completes its value from the object in one call. ``bound``: some field (here
    or below) passes this execution's ``Info`` to its resolver, so the plan serves no other."""

    __slots__ = ("entries", "bound")

    def __init__(self, entries: list[tuple[str, Getter]], bound: bool = False) -> None:
        self.entries = entries
        self.bound = bound

    def complete(self, source: Any) -> dict[str, Any]:
        return {name: field(source) for name, field in self.entries}


def _abandon_awaitable(value: Any) -> NoReturn:
    """An awaitable a plain resolver returned is dropped before the ordinary path resolves again."""
    if inspect.iscoroutine(value):
        value.close()
    elif isinstance(value, asyncio.Future):
        value.add_done_callback(lambda future: future.cancelled() or future.exception())
    raise _ABANDON


def _checked(read: Getter) -> Getter:
    def read_checked(source: Any) -> Any:
        value = read(source)
        if isinstance(value, Exception) or inspect.isawaitable(value):
            _abandon_awaitable(value)
        return value

    return read_checked


# Plans that serve every execution of one parsed operation, per schema (tests build hundreds of
# schemas, which their plans must not keep alive), by (the operation's id, the type, the selected
# nodes' ids). An entry holds its operation: an id is found only while that operation lives.
SHARED_PLANS_PER_SCHEMA = 512
_SharedPlans = LRUCache[tuple[int, str, tuple[int, ...]], tuple[Any, ObjectPlan | None]]
_SHARED: weakref.WeakKeyDictionary[GraphQLSchema, _SharedPlans] = weakref.WeakKeyDictionary()


def _shared_plans(execution: Any) -> _SharedPlans | None:
    """The plans this execution may share with others of its operation, or None.

    The parser's cache hands back the same operation node for the same text, and a selection is
    collected the same way every time unless a directive decides it (``@include(if: $flag)``
    depends on the variables): an operation whose text has no ``@`` at all shares its plans.
    """
    location = execution.operation.loc
    if location is None or "@" in location.source.body:
        return None
    shared = _SHARED.get(execution.schema)
    if shared is None:
        shared = _SHARED[execution.schema] = LRUCache(maxsize=SHARED_PLANS_PER_SCHEMA)
    return shared


class PlanBuilder:
    """Builds the plans of one execution; ``execution`` is graphql-core's executor (for its collection).

    A plan built for an operation serves its later executions too (``_shared_plans``) unless it is
    ``bound`` to this one: building the plans of a createPost's payload cost 3% of the request.
    """

    def __init__(self, execution: Any) -> None:
        self.execution = execution
        # By the set's identity, holding the set itself: a set freed during the execution (the root's)
        # could otherwise lend its id to a later one, which would find a plan that is not its own.
        self.plans: dict[tuple[str, int], tuple[Any, ObjectPlan | None]] = {}
        self.shared = _shared_plans(execution)
        self._binding = False  # the plan being built passes this execution's Info somewhere

    def plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> ObjectPlan | None:
        key = (parent_type.name, id(grouped_field_set))
        known = self.plans.get(key)
        if known is None:
            self.plans[key] = (grouped_field_set, None)  # a selection that contains itself is not planned
            known = self.plans[key] = (grouped_field_set, self._shared_or_built(parent_type, grouped_field_set))
        return known[1]

    def _shared_or_built(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> ObjectPlan | None:
        if self.shared is None:
            return self._build(parent_type, grouped_field_set)
        operation = self.execution.operation
        nodes = tuple(id(details.node) for details_list in grouped_field_set.values() for details in details_list)
        shared_key = (id(operation), parent_type.name, nodes)
        found = self.shared.get(shared_key)
        if found is not None and found[0] is operation:
            return found[1]
        plan = self._build(parent_type, grouped_field_set)
        if plan is None or not plan.bound:  # None too: the same selection is unplannable every time
            self.shared[shared_key] = (operation, plan)
        return plan

    def _build(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> ObjectPlan | None:
        outer, self._binding = self._binding, False
        try:
            entries = self._entries(parent_type, grouped_field_set)
            return None if entries is None else ObjectPlan(entries, bound=self._binding)
        finally:
            self._binding = outer or self._binding

    def _entries(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[tuple[str, Getter]] | None:
        entries: list[tuple[str, Getter]] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            if node.arguments:
                return None
            name = node.name.value
            if name == "__typename":
                type_name = parent_type.name
                entries.append((response_name, lambda _source, type_name=type_name: type_name))
                continue
            field = parent_type.fields.get(name)
            if field is None:
                return None
            attribute = _attribute_of(field)
            kind = field.type
            inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
            if attribute is not None and is_leaf_type(inner):  # the commonest field: one call, not four
                entries.append((response_name, _attribute_leaf(attribute, inner, inner is not kind)))
                continue
            read = (lambda source, attribute=attribute: getattr(source, attribute)) if attribute is not None else self._reader(
                parent_type, field, field_details_list
            )
            if read is None:
                return None
            complete = self._completer(kind, field_details_list)
            if complete is None:
                return None
            entries.append((response_name, _composed(read, complete)))
        return entries

    def _reader(self, parent_type: GraphQLObjectType, field: Any, field_details_list: Any) -> Getter | None:
        """How a field marked PLAIN is resolved, or None."""
        if field.args:
            return None
        definition = field.extensions.get(_STRAWBERRY_FIELD)
        if definition is None or definition.extensions or definition.permission_classes:
            return None
        resolver = definition.base_resolver
        if resolver is None:
            return None
        if not (definition.metadata or {}).get(PLAIN_KEY) or resolver.is_async:
            return None
        if resolver.parent_parameter or resolver.root_parameter or resolver.arguments:
            return None
        function = resolver.wrapped_func
        info_parameter = resolver.info_parameter
        if info_parameter is None:
            if resolver.self_parameter:
                return _checked(function)
            return _checked(lambda _source: function())
        execution = self.execution
        self._binding = True
        raw = execution.build_resolve_info(field, [details.node for details in field_details_list], parent_type, None)
        keyword = {info_parameter.name: Info(_raw_info=raw, _field=definition)}
        if resolver.self_parameter:
            return _checked(lambda source: function(source, **keyword))
        return _checked(lambda _source: function(**keyword))

    def _completer(self, kind: GraphQLOutputType, field_details_list: Any) -> Completer | None:
        non_null = isinstance(kind, GraphQLNonNull)
        inner = kind.of_type if non_null else kind
        complete: Completer | None
        if is_leaf_type(inner):
            complete = _leaf(inner)  # type: ignore[arg-type]
        elif isinstance(inner, GraphQLObjectType):
            complete = self._object(inner, field_details_list)
        elif isinstance(inner, GraphQLList):
            item = self._completer(inner.of_type, field_details_list)
            if item is None or isinstance(inner.of_type, GraphQLList) or (
                isinstance(inner.of_type, GraphQLNonNull) and isinstance(inner.of_type.of_type, GraphQLList)
            ):
                return None
            complete = _list(item)
        else:
            return None  # interfaces and unions resolve their type at run time
        return _non_null(complete) if non_null else _nullable(complete)

    def _object(self, kind: GraphQLObjectType, field_details_list: Any) -> Completer | None:
        grouped_field_set, new_defer_usages, *_ = self.execution.collect_subfields(kind, field_details_list)
        if new_defer_usages:
            return None
        plan = self.plan(kind, grouped_field_set)
        if plan is None:
            return None
        self._binding = self._binding or plan.bound
        is_type_of = kind.is_type_of
        complete = plan.complete
        if is_type_of is None:
            return complete

        def complete_object(value: Any) -> dict[str, Any]:
            if not is_type_of(value, None):
                raise _ABANDON
            return complete(value)

        return complete_object


def _attribute_of(field: Any) -> str | None:
    """The attribute a field without arguments, resolver, extensions or permissions reads; else None."""
    definition = field.extensions.get(_STRAWBERRY_FIELD)
    if field.args or definition is None or definition.base_resolver is not None or definition.extensions:
        return None
    if definition.permission_classes or not getattr(field.resolve, "_is_default", False):
        return None
    return definition.python_name if definition.default_resolver is getattr else None


def _composed(read: Getter, complete: Completer) -> Getter:
    return lambda source: complete(read(source))


# Leaf values graphql-core's coercion returns as they are (String and ID of a str, Boolean of a bool).
_AS_THEY_ARE = {"String": (str,), "ID": (str,), "Boolean": (bool,)}


def _enum_names(kind: GraphQLLeafType) -> dict[Any, str]:
    """A strawberry enum's members by the name its coercion answers (its first value equal to theirs)."""
    members = getattr(kind, "wrapped_cls", None)
    if not isinstance(kind, GraphQLEnumType) or members is None:
        return {}
    names: dict[Any, str] = {}
    for member in members:
        for name, value in kind.values.items():
            if member.value == value.value:
                names[member] = name
                break
    return names


def _attribute_leaf(attribute: str, kind: GraphQLLeafType, non_null: bool) -> Getter:
    """Read an attribute and coerce it in one call; what the shortcuts do not know, ``coerce`` does."""
    as_they_are = _AS_THEY_ARE.get(kind.name, ()) if _is_graphql_cores(kind) else ()
    names = _enum_names(kind)
    names_classes = {member.__class__ for member in names}
    complete = _leaf(kind)

    def field(source: Any) -> Any:
        value = getattr(source, attribute)
        if value.__class__ in as_they_are:
            return value
        name = names.get(value) if names and value.__class__ in names_classes else None
        if name is not None:
            return name
        if value is None:
            if non_null:
                raise _ABANDON
            return None
        return complete(value)

    return field


def _is_graphql_cores(kind: GraphQLLeafType) -> bool:
    """One of graphql-core's own scalars, not an override that took its name."""
    return specified_scalar_types.get(kind.name) is kind


def _leaf(kind: GraphQLLeafType) -> Completer:
    coerce = kind.coerce_output_value

    def complete_leaf(value: Any) -> Any:
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _ABANDON
        return coerced

    if isinstance(kind, GraphQLEnumType) or _is_graphql_cores(kind):
        return complete_leaf  # neither an exception nor an awaitable coerces to these

    def complete_custom_leaf(value: Any) -> Any:  # a custom scalar (JSON) might pass either through
        if isinstance(value, Exception) or inspect.isawaitable(value):
            _abandon_awaitable(value)
        return complete_leaf(value)

    return complete_custom_leaf


def _list(item: Completer) -> Completer:
    def complete_list(value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise _ABANDON
        return [item(element) for element in value]

    return complete_list


def _non_null(complete: Completer) -> Completer:
    def complete_non_null(value: Any) -> Any:
        if value is None:
            raise _ABANDON
        return complete(value)

    return complete_non_null


def _nullable(complete: Completer) -> Completer:
    def complete_nullable(value: Any) -> Any:
        return None if value is None else complete(value)

    return complete_nullable
