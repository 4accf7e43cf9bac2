"""The root types and the schema object.

Each domain module contributes a query class and a mutation class; they are merged here so a
module owns its part of the API and this file only lists them.

Every root query field is nullable, as in GitHub's API: an error on one field (FORBIDDEN for a
scope the key lacks, say) nulls that field alone, where a non-null root would null the whole
response and lose the fields the key may read. ``tests/test_input_errors.py`` holds every module
to it.
"""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types

from schema.accounts import AccountMutation, AccountQuery
from schema.ads import AdsMutation, AdsQuery
from schema.api_keys import ApiKeyMutation, ApiKeyQuery
from schema.approvals import ApprovalMutation, ApprovalQuery
from schema.audit import AuditQuery, ControlMutation, HealthQuery, audit_every_mutation
from schema.bulk_posts import BulkPostMutation
from schema.calendar import CalendarMutation, CalendarQuery
from schema.campaign_planning import CampaignPlanningMutation
from schema.campaigns import CampaignMutation, CampaignQuery
from schema.connections import ConnectionMutation, ConnectionQuery
from schema.cost import QueryCost
from schema.errors import ErrorShaping
from schema.execution import GatewayExecution
from schema.introspection import PrivateIntrospection
from schema.jobs import JobQuery, PublishingMutation
from schema.media import MediaMutation, MediaQuery
from schema.metrics import MetricsMutation, MetricsQuery
from schema.organizations import OrganizationMutation, OrganizationQuery
from schema.parsing import BoundedParserCache
from schema.posts import PostMutation, PostQuery
from schema.providers import ProviderQuery
from schema.reads import SharedReads
from schema.recurrence import RecurrenceMutation, RecurrenceQuery
from schema.relay import MAX_NODES, Node, resolve_node, resolve_nodes
from schema.scalars import SCALAR_OVERRIDES
from schema.subscriptions import Subscription
from schema.validation_cache import ValidationByDocument
from schema.variable_text import VariableText
from schema.viewer import Viewer, resolve_viewer
from schema.webhooks import WebhookMutation, WebhookQuery

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5_000
# Parsed and validated documents are reused; bounded so a flood of distinct queries cannot grow memory.
DOCUMENT_CACHE_SIZE = 512
# The depth and alias rules, made once. Each limiter makes a new rule class when it is built,
# and the validation cache keys on the rules: built per request, every request's rules were new
# to it and each document was validated again (a third of a mutation's CPU).
LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


@strawberry.type
class CoreQuery:
    viewer: Viewer | None = strawberry.field(resolver=resolve_viewer, description="The caller: key, organization, scopes.")
    node: Node | None = strawberry.field(resolver=resolve_node, description="Any object by its id.")
    nodes: list[Node | None] | None = strawberry.field(
        resolver=resolve_nodes,
        description=f"Objects by id (at most {MAX_NODES}), in the order given; null where `node` would be null. "
        "One query per type.",
    )


QUERIES: tuple[type, ...] = (
    CoreQuery, OrganizationQuery, ApiKeyQuery, ProviderQuery, AccountQuery, ConnectionQuery, MediaQuery, PostQuery, JobQuery,
    AuditQuery, HealthQuery, ApprovalQuery, CalendarQuery, MetricsQuery, WebhookQuery, CampaignQuery, RecurrenceQuery, AdsQuery,
)
MUTATIONS: tuple[type, ...] = (
    OrganizationMutation, ApiKeyMutation, AccountMutation, ConnectionMutation, MediaMutation, PostMutation, PublishingMutation,
    ControlMutation, ApprovalMutation, CalendarMutation, MetricsMutation, WebhookMutation,
    CampaignMutation, CampaignPlanningMutation, BulkPostMutation, RecurrenceMutation, AdsMutation,
)


class RememberedNames(NameConverter):
    """Strawberry's names, each python name converted to camelCase once.

    Strawberry converts an argument's and an input field's name again on every request that
    passes it (``convert_arguments``): a createPost spent 6% of its time in ``to_camel_case``."""

    def __init__(self) -> None:
        super().__init__()
        self._converted: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._converted.get(name)
        if converted is None:
            converted = self._converted[name] = super().apply_naming_config(name)
        return converted


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:  # type: ignore[no-untyped-def]
        """Errors are logged once, by ErrorShaping, with the request id; not again here."""


def build_schema() -> strawberry.Schema:
    return GatewaySchema(
        query=merge_types("Query", QUERIES),
        # Every mutation, whichever module adds it, is recorded in the audit log (schema.audit).
        mutation=audit_every_mutation(merge_types("Mutation", MUTATIONS)) if MUTATIONS else None,
        subscription=Subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        config=StrawberryConfig(name_converter=RememberedNames()),
        execution_context_class=GatewayExecution,
        # Factories, not instances: extensions keep per-operation state, so each request gets its own.
        # ErrorShaping first: it is the outermost hook, so it sees errors raised by every other one.
        extensions=[
            ErrorShaping,
            lambda: BoundedParserCache(maxsize=DOCUMENT_CACHE_SIZE, max_tokens=MAX_TOKENS),
            lambda: ValidationByDocument(maxsize=DOCUMENT_CACHE_SIZE, rules=LIMIT_RULES),
            # After the cache: it replaces the cached errors for a keyless caller, never edits them.
            PrivateIntrospection,
            QueryCost,
            VariableText,
            SharedReads,  # one read session per query, shared by its loaders (schema.reads)
        ],
    )
