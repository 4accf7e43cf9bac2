"""The root types and the schema object."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from schema.errors import ErrorShaping
from schema.viewer import Viewer, resolve_viewer

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5_000


@strawberry.type
class Query:
    viewer: Viewer = strawberry.field(resolver=resolve_viewer, description="The caller: key, organization, scopes.")


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:  # type: ignore[no-untyped-def]
        """Errors are logged once, by ErrorShaping, with the request id; not again here."""


def build_schema() -> strawberry.Schema:
    return GatewaySchema(
        query=Query,
        # Factories, not instances: extensions keep per-operation state, so each request gets its own.
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            ErrorShaping,
        ],
    )
