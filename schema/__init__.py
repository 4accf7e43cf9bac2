"""The GraphQL surface: Strawberry types, queries, mutations and subscriptions.

Resolvers map gateway services to the schema; they hold no business rules and no SQL.
"""

from schema.root import build_schema

__all__ = ["build_schema"]
