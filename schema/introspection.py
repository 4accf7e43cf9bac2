"""Introspection for callers without a key, when the operator keeps the schema private.

With ``SOCIALGATE_PUBLIC_INTROSPECTION=false`` a caller without a valid API key may not ask for
``__schema`` or ``__type`` (``__typename`` stays: it says nothing about the schema), and the
validation errors it gets say nothing either: graphql-core's "Did you mean 'posts'?" would hand
the field names out one typo at a time. GraphiQL is refused to such callers by the view
(``schema.http``). A caller with a valid key sees all of it, as everyone does by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import BREAK, DocumentNode, FieldNode, GraphQLError, Visitor, validate, visit
from strawberry.extensions import SchemaExtension

from gateway.core import ServiceError, Unauthenticated

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
PRIVATE_MESSAGE = "This server answers introspection (__schema, __type) only to callers with a valid API key."


def introspection_is_private(context: Any) -> bool:
    """Whether this request's caller may not introspect: the setting is off and it has no valid key."""
    settings = context.runtime.settings
    return not settings.public_introspection and isinstance(context.principal_or_error, ServiceError)


class _IntrospectionField(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: FieldNode | None = None

    def enter_field(self, node: FieldNode, *_args: Any) -> Any:
        if node.name.value in INTROSPECTION_FIELDS:
            self.found = node
            return BREAK
        return None


def introspection_field(document: DocumentNode) -> FieldNode | None:
    """The first ``__schema`` or ``__type`` anywhere in the document (fragments included)."""
    finder = _IntrospectionField()
    visit(document, finder)
    return finder.found


class PrivateIntrospection(SchemaExtension):
    """Listed after the validation cache: it replaces, never edits, the cached list of errors."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and introspection_is_private(context.context):
            errors = list(context.pre_execution_errors or ())
            if errors:  # again without suggestions: rare, and only for these callers
                errors = validate(context.schema._schema, document, context.validation_rules, hide_suggestions=True)
            field = introspection_field(document)
            if field is not None:
                refusal = Unauthenticated(PRIVATE_MESSAGE)
                errors.append(GraphQLError(refusal.message, nodes=[field], original_error=refusal))
            if errors:
                context.pre_execution_errors = errors
        yield
