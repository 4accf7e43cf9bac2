"""The scheduler's own loop keeps a backlog moving: a call that ends frees a slot, and the
loop claims the next due target then rather than at its next poll."""

import asyncio

from gateway.engine.scheduler import Limits
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

POSTS = 5
# Far longer than the wait below: only wake-ups, never a poll, can finish the backlog in time.
POLL_SECONDS = 60


async def test_a_backlog_larger_than_the_batch_is_claimed_as_slots_free(tmp_path):
    async with engine_app(tmp_path, scheduler_poll_seconds=POLL_SECONDS) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        subscription = api.runtime.events.subscribe(org.organization_id)
        for i in range(POSTS):
            assert (await publish(api, org.secret, await new_post(api, org.secret, [account], text=f"backlog {i}")))["userErrors"] == []
        scheduler = scheduler_for(api, limits=Limits(batch=2, per_provider=2, per_account=2))
        scheduler.start()
        try:
            succeeded = 0
            while succeeded < POSTS:
                event = await asyncio.wait_for(subscription.next(), POLL_SECONDS / 2)
                succeeded += event.kind == "job.succeeded"
        finally:
            await scheduler.stop()
            subscription.close()
