"""Validation results kept by the parsed document itself, not by its hash.

Strawberry's ``ValidationCache`` keys an ``lru_cache`` on (schema, document, rules). graphql-core
3.3's AST nodes are dataclasses whose hash walks the whole tree, with nothing cached, so every
request hashed its document node by node before finding the answer it had already found: a
little over 1% of a createPost. ``ParserCache`` hands back the same ``DocumentNode`` for the same
text, so the document's identity is the key here. An entry holds its document (and is checked
against it), so a freed document's id, taken by a new one, never finds another document's errors.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from cachetools import LRUCache
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

# (document, rules, errors) by the document's id, per schema: tests build hundreds of schemas,
# which must not be kept alive by their entries.
_Entries = LRUCache[int, tuple[Any, tuple[Any, ...], list[GraphQLError]]]
_BY_SCHEMA: weakref.WeakKeyDictionary[GraphQLSchema, _Entries] = weakref.WeakKeyDictionary()


class ValidationByDocument(SchemaExtension):
    """Validates a document once per schema and set of rules, as strawberry's ``ValidationCache``.

    ``rules``: the API's own rules (its limits), checked with the schema's, as strawberry's
    ``AddValidationRules`` would add them: here, with no hook of their own to enter on every request.
    """

    def __init__(self, maxsize: int, rules: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.rules = rules

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.rules:
            context.validation_rules = (*context.validation_rules, *self.rules)
        schema, document, rules = context.schema._schema, context.graphql_document, context.validation_rules
        entries = _BY_SCHEMA.get(schema)
        if entries is None:
            entries = _BY_SCHEMA[schema] = LRUCache(maxsize=self.maxsize)
        entry = entries.get(id(document))
        if entry is not None and entry[0] is document and entry[1] == rules:
            errors = entry[2]
        else:
            errors = validate_document(schema, document, rules)
            entries[id(document)] = (document, rules, errors)
        # Shared by every request of this document: later hooks replace the list, never edit it.
        context.pre_execution_errors = errors
        yield
