"""Webhook deliveries on a real PostgreSQL: the outbox's join, and two workers claiming at once.

On PostgreSQL the claim runs ``FOR UPDATE SKIP LOCKED`` over a ranked subquery; two workers that
claim together must split the deliveries between them, never both send one.
"""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from gateway.auth.keys import Principal
from gateway.events import record_org_event
from gateway.runtime import Runtime
from gateway.storage.models import WebhookDelivery
from gateway.webhooks import endpoints
from gateway.webhooks.dispatcher import WebhookDispatcher
from tests.conftest import make_org_with_key
from tests.peers.test_postgres import migrated, pg_settings, postgres_url  # noqa: F401 — the PostgreSQL fixtures
from tests.webhook_receiver import running_receiver

pytestmark = pytest.mark.e2e
EVENTS = 20


@pytest.fixture
def private_urls(migrated):  # noqa: F811 — the fixture above, with loopback receivers allowed
    return migrated.model_copy(update={"allow_private_urls": True})


async def test_two_workers_claiming_together_send_each_delivery_once_on_postgres(private_urls):
    first, second = Runtime(private_urls), Runtime(private_urls)
    await first.start()
    await second.start()
    try:
        async with running_receiver() as receiver:
            made = await make_org_with_key(first)
            async with first.database.write() as session:
                endpoint = await endpoints.create_endpoint(
                    session, Principal(made.api_key_id, made.organization_id, ("*",)), first.secret_key,
                    url=receiver.url("/pg"), event_types=["account.*"], allow_private=True,
                )
            for n in range(EVENTS):
                async with first.database.write() as session:
                    await record_org_event(session, made.organization_id, "account.connected", {"accountId": f"acct_{n}"})
            workers = [WebhookDispatcher(first), WebhookDispatcher(second)]
            try:
                claimed = Counter()
                while sum(claimed.values()) < EVENTS:
                    rounds = await asyncio.gather(*(worker.run_once() for worker in workers))
                    assert any(rounds), "due deliveries that no worker could claim"
                    claimed.update({index: count for index, count in enumerate(rounds)})
            finally:
                for worker in workers:
                    await worker.stop()
            requests = receiver.at("/pg")
        async with first.database.read() as session:
            statuses = (await session.execute(select(WebhookDelivery.status))).scalars().all()
    finally:
        await first.stop()
        await second.stop()
    ids = Counter(r.headers["webhook-id"] for r in requests)
    assert len(ids) == EVENTS and set(ids.values()) == {1}  # each delivery sent once, by one worker
    assert statuses == ["delivered"] * EVENTS
    assert sorted(Webhook(endpoint.secret).verify(r.body, r.headers)["data"]["accountId"] for r in requests) == sorted(
        f"acct_{n}" for n in range(EVENTS))
