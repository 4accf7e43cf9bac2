"""DataLoaders, one set per request: a page of posts loads its targets, accounts and media in one
query each, however long the page is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from gateway.accounts import shown_accounts
from gateway.ads.objects import children_of
from gateway.approvals.reviews import threads
from gateway.audit.attempts import attempts_of
from gateway.campaigns.campaigns import CampaignCounts, counts_of
from gateway.content import shown_targets_of
from gateway.runtime import Runtime
from gateway.storage import AdObject, ApprovalEntry, Attempt, MediaAsset
from schema.metrics_loaders import MetricsLoaders

T = TypeVar("T")


class Loaders:
    def __init__(
        self, runtime: Runtime, organization_id: Callable[[], str], read: Callable[[], AbstractAsyncContextManager[Any]] | None = None
    ) -> None:
        self._runtime = runtime
        self._organization_id = organization_id
        # The request's read (``Context.read``): during a query, the session its resolvers share.
        self._read = read or runtime.database.read
        self._built: dict[Any, Any] = {}
        # Rows a list resolver read ahead for its items' children (schema.lookahead): the
        # children's resolvers answer from these without a DataLoader round.
        self.known_targets: dict[str, list[Any]] = {}
        self.known_accounts: dict[str, Any] = {}

    # Each loader is made on first use: a request uses two or three of them, and making all of
    # them (strawberry's DataLoader takes the running loop and builds a cache) was 5% of a page.
    @cached_property
    def accounts(self) -> DataLoader[str, Any]:
        return DataLoader(self._load_accounts)

    @cached_property
    def media(self) -> DataLoader[str, MediaAsset | None]:
        return DataLoader(self._load_by_id(MediaAsset))

    @cached_property
    def targets_by_post(self) -> DataLoader[str, list[Any]]:
        return DataLoader(self._load_targets)

    @cached_property
    def attempts_by_target(self) -> DataLoader[str, list[Attempt]]:
        return DataLoader(self._load_attempts)

    @cached_property
    def approval_threads(self) -> DataLoader[str, list[ApprovalEntry]]:
        return DataLoader(self._load_threads)

    @cached_property
    def metrics(self) -> MetricsLoaders:
        return MetricsLoaders(self._runtime, self._organization_id)

    @cached_property
    def campaign_counts(self) -> DataLoader[str, CampaignCounts]:
        return DataLoader(self._load_campaign_counts)

    @cached_property
    def ad_children(self) -> DataLoader[str, list[AdObject]]:
        return DataLoader(self._load_ad_children)

    def _load_by_id(self, model: Any) -> Callable[[Sequence[str]], Any]:
        async def load(ids: Sequence[str]) -> list[Any]:
            # Scoped by organization here too: a loader is never a way around tenant isolation.
            query = select(model).where(model.id.in_(ids), model.organization_id == self._organization_id())
            async with self._read() as session:
                rows = {row.id: row for row in (await session.execute(query)).scalars()}
            return [rows.get(i) for i in ids]

        return load

    async def _load_accounts(self, ids: Sequence[str]) -> list[Any]:
        """Accounts as shown (Core rows without their credentials), scoped by organization."""
        async with self._read() as session:
            rows = await shown_accounts(session, self._organization_id(), ids)
        return [rows.get(i) for i in ids]

    def once(self, key: Any, build: Callable[[], T]) -> T:
        """``build()`` once per request for ``key``: forty targets of two accounts build two AccountTypes."""
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]  # type: ignore[no-any-return]

    async def _load_ad_children(self, parent_ids: Sequence[str]) -> list[list[AdObject]]:
        """The ad sets of a page of campaigns (the ads of its ad sets) in one query."""
        async with self._read() as session:
            grouped = await children_of(session, self._organization_id(), parent_ids)
        return [grouped[parent_id] for parent_id in parent_ids]

    async def _load_targets(self, post_ids: Sequence[str]) -> list[list[Any]]:
        async with self._read() as session:
            grouped = await shown_targets_of(session, post_ids)
        return [grouped[post_id] for post_id in post_ids]

    async def _load_attempts(self, target_ids: Sequence[str]) -> list[list[Attempt]]:
        async with self._read() as session:
            grouped = await attempts_of(session, self._organization_id(), target_ids)
        return [grouped[target_id] for target_id in target_ids]
    async def _load_threads(self, post_ids: Sequence[str]) -> list[list[ApprovalEntry]]:
        async with self._read() as session:
            grouped = await threads(session, post_ids)
        return [grouped[post_id] for post_id in post_ids]
    async def _load_campaign_counts(self, campaign_ids: Sequence[str]) -> list[CampaignCounts]:
        # The ids come from campaigns already read through the caller's organization.
        async with self._read() as session:
            counts = await counts_of(session, campaign_ids)
        return [counts[campaign_id] for campaign_id in campaign_ids]
