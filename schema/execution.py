"""How the schema executes: graphql-core's executor, with shorter paths for plain objects and fields.

An object whose every selected field is plain is completed by its plan (``schema.plans``), in
one loop per object. Where a plan cannot be used, a plain leaf still takes the short path below.

A page of 20 posts with their targets and accounts completes about 220 leaf fields (ids,
texts, statuses) that are plain attributes: strawberry hands graphql-core a resolver that only
reads the attribute, and graphql-core still builds a resolve-info object, checks for arguments
and awaitables and walks ``complete_value`` for each, a fifth of the request's CPU. For a field
with no arguments, no middleware and strawberry's attribute resolver, whose type is a scalar or
an enum, ``execute_field`` here reads the attribute and coerces it as ``complete_leaf_value``
would. Anything else, and any value the short path does not finish (null, an error, a failed
coercion), goes the ordinary way, which resolves again and reports as it always does: the
attribute read has no side effect. ``tests/test_execution.py`` holds both paths to the same
answers.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLLeafType, Undefined, is_leaf_type, is_non_null_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.plans import PlanBuilder

# Each field carries its plan in its own ``extensions`` (a dict per field): a cache keyed apart
# from the field would keep every schema ever built alive, and tests build hundreds.
_PLAN_KEY = "socialgate.leafPlan"


def leaf_plan(field: GraphQLField) -> tuple[Any, GraphQLLeafType] | None:
    """(strawberry's attribute resolver, the leaf type) when ``field`` may take the short path."""
    extensions = field.extensions
    if _PLAN_KEY in extensions:
        return extensions[_PLAN_KEY]  # type: ignore[no-any-return]
    resolve, kind = field.resolve, field.type
    if is_non_null_type(kind):
        kind = kind.of_type
    plan = (resolve, kind) if getattr(resolve, "_is_default", False) and not field.args and is_leaf_type(kind) else None
    extensions[_PLAN_KEY] = plan
    return plan


class GatewayExecution(StrawberryGraphQLCoreExecutionContext):
    _plans: PlanBuilder | None = None

    def _plain(self) -> bool:
        """No middleware wraps the resolvers (strawberry passes an empty manager unless an extension resolves)."""
        middleware = self.middleware_manager
        return middleware is None or not middleware.middlewares

    def execute_fields(self, parent_type: Any, source_value: Any, path: Any, grouped_field_set: Any, position_context: Any) -> Any:
        # A whole object by its plan (schema.plans) when every field it selects is plain; otherwise,
        # or when the plan meets anything it would not answer exactly as graphql-core does, the
        # ordinary way from scratch.
        if position_context is None and self._plain():
            plans = self._plans
            if plans is None:
                plans = self._plans = PlanBuilder(self)
            plan = plans.plan(parent_type, grouped_field_set)
            if plan is not None:
                try:
                    return plan.complete(source_value)
                except Exception:  # noqa: S110 — the ordinary path resolves again and reports what it meets
                    pass
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any, path: Any, position_context: Any) -> Any:
        node = field_details_list[0].node
        if not node.arguments and self._plain():
            field = self.schema.get_field(parent_type, node.name.value)
            plan = leaf_plan(field) if field is not None else None
            if plan is not None:
                resolve, kind = plan
                try:
                    value = resolve(source, None)  # strawberry's attribute resolver takes no info
                    if value is not None and not isinstance(value, Exception) and not self.is_awaitable(value):
                        coerced = kind.coerce_output_value(value)
                        if coerced is not None and coerced is not Undefined:
                            return coerced
                except Exception:  # noqa: S110 — the ordinary path below meets it again and reports it
                    pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
