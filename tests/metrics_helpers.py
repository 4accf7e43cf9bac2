"""Helpers for the metrics tests: published sandbox posts, a movable clock, a collector to drive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from gateway.accounts.accounts import seal_credentials
from gateway.core import clock
from gateway.metrics.collector import MetricsCollector
from gateway.storage.models import Account, Target, TargetMetrics
from tests.engine import new_post, publish, scheduler_for


class Clock:
    """``gateway.core.clock.utcnow`` held at a time the test moves."""

    def __init__(self, monkeypatch, at: datetime) -> None:
        self.at = at
        monkeypatch.setattr(clock, "utcnow", lambda: self.at)


async def published_post(api, key: str, account_ids: list[str], text: str = "Figures, please") -> tuple[str, list[Target]]:
    post_id = await new_post(api, key, account_ids, text=text)
    assert (await publish(api, key, post_id))["userErrors"] == []
    await scheduler_for(api).drain()
    async with api.runtime.database.read() as session:
        targets = list((await session.execute(select(Target).where(Target.post_id == post_id).order_by(Target.id))).scalars())
    assert all(t.status == "published" for t in targets), [t.status for t in targets]
    return post_id, targets


async def set_credentials(api, account_id: str, **credentials: str) -> None:
    """Replace a sandbox account's credentials (to make its later calls fail on purpose)."""
    async with api.runtime.database.write() as session:
        account = await session.get(Account, account_id)
        account.credentials = seal_credentials(api.runtime.secret_key, account_id, credentials)


async def tracked(api, target_id: str) -> TargetMetrics | None:
    async with api.runtime.database.read() as session:
        return await session.get(TargetMetrics, target_id)


def collector(api) -> MetricsCollector:
    return MetricsCollector(api.runtime)
