"""The metrics DataLoaders of one request: a page of posts, targets or accounts reads its figures in
one statement, however long the page (``posts(first: 100) { metrics { latest } }`` runs the same
number of statements as ``first: 10``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from gateway.metrics import reads
from gateway.runtime import Runtime


class MetricsLoaders:
    def __init__(self, runtime: Runtime, organization_id: Callable[[], str]) -> None:
        self._runtime = runtime
        self._organization_id = organization_id
        self.target_latest: DataLoader[str, Any] = DataLoader(self._by(reads.latest_of_targets))
        self.post_latest: DataLoader[str, list[Any]] = DataLoader(self._by(reads.latest_of_posts, default=list))
        self.account_latest: DataLoader[str, Any] = DataLoader(self._by(reads.latest_of_accounts))
        self.campaign_latest: DataLoader[str, reads.Totals] = DataLoader(self._by(reads.latest_of_campaigns, default=lambda: reads.add_up([])))

    def _by(self, read: Callable[..., Any], default: Callable[[], Any] = lambda: None) -> Callable[[Sequence[str]], Any]:
        async def load(ids: Sequence[str]) -> list[Any]:
            async with self._runtime.database.read() as session:
                found = await read(session, self._organization_id(), list(ids))
            return [found.get(i) if found.get(i) is not None else default() for i in ids]

        return load
