"""Signed webhooks: the outbox, Standard Webhooks signatures, the ladder, disabling, rotation, the SSRF guard.

A real receiver (uvicorn on loopback, ``tests/webhook_receiver.py``) takes every delivery and the
tests verify each with ``standardwebhooks.Webhook.verify``, as a customer's receiver would. Time
moves by a fake clock handed to the dispatcher, never by sleeping.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.auth.keys import Principal
from gateway.core.errors import UserError
from gateway.events import record_org_event
from gateway.orgs.organizations import create_organization
from gateway.runtime import Runtime
from gateway.settings import load_settings
from gateway.storage.models import OrganizationEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from gateway.webhooks import endpoints
from gateway.webhooks.dispatcher import PER_ENDPOINT, WebhookDispatcher
from gateway.webhooks.ladder import LADDER
from tests.conftest import make_org_with_key
from tests.webhook_receiver import running_receiver

NO_WAIT = (0,) * len(LADDER)


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), allow_private_urls=True,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def receiver():
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def owner(runtime: Runtime) -> Principal:
    made = await make_org_with_key(runtime)
    return Principal(made.api_key_id, made.organization_id, ("*",))


async def register(runtime: Runtime, principal: Principal, url: str, event_types=("*",), scope="own") -> tuple[str, str]:
    async with runtime.database.write() as session:
        made = await endpoints.create_endpoint(
            session, principal, runtime.secret_key, url=url, event_types=list(event_types), scope=scope, allow_private=True,
        )
    return made.endpoint.id, made.secret


async def emit(runtime: Runtime, organization_id: str, kind: str = "account.connected", **data) -> None:
    async with runtime.database.write() as session:
        event = await record_org_event(session, organization_id, kind, {"accountId": "acct_x", **data})
    await runtime.publish(event)


async def deliveries(runtime: Runtime, endpoint_id: str) -> list[WebhookDelivery]:
    async with runtime.database.read() as session:
        return list((await session.execute(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.created_at)
        )).scalars())


async def attempts(runtime: Runtime, delivery_id: str) -> list[WebhookAttempt]:
    async with runtime.database.read() as session:
        return list((await session.execute(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.number)
        )).scalars())


async def deliver(runtime: Runtime, rounds: int = 1, **options) -> list[int]:
    """Run a dispatcher's ``run_once`` ``rounds`` times: how many deliveries each round claimed."""
    dispatcher = WebhookDispatcher(runtime, **options)
    try:
        return [await dispatcher.run_once() for _ in range(rounds)]
    finally:
        await dispatcher.stop()


@asynccontextmanager
async def another_runtime(tmp_path, name: str, **settings) -> AsyncIterator[tuple[Runtime, Principal]]:
    """A runtime with its own database and settings, and an organization's principal in it."""
    other = Runtime(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/{name}.db", data_dir=str(tmp_path), **settings))
    await other.start()
    try:
        made = await make_org_with_key(other)
        yield other, Principal(made.api_key_id, made.organization_id, ("*",))
    finally:
        await other.stop()


def verified(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


# --- the outbox ---------------------------------------------------------------------------------


async def test_a_delivery_is_written_in_the_transaction_of_its_event_and_rolls_back_with_it(runtime, owner, receiver):
    endpoint_id, _ = await register(runtime, owner, receiver.url("/hook"))
    async with runtime.database.write() as session:
        await record_org_event(session, owner.organization_id, "account.connected", {"accountId": "acct_x"})
        assert await deliveries(runtime, endpoint_id) == []  # nothing visible before the commit
    assert [d.event_type for d in await deliveries(runtime, endpoint_id)] == ["account.connected"]

    with pytest.raises(RuntimeError):
        async with runtime.database.write() as session:
            await record_org_event(session, owner.organization_id, "account.token_expired", {"accountId": "acct_x"})
            raise RuntimeError("the transaction fails after the event")
    assert len(await deliveries(runtime, endpoint_id)) == 1
    async with runtime.database.read() as session:
        kinds = (await session.execute(select(OrganizationEvent.kind))).scalars().all()
    assert kinds == ["account.connected"]


async def test_event_types_pick_what_an_endpoint_receives(runtime, owner, receiver):
    accounts, jobs = (await register(runtime, owner, receiver.url("/a"), ["account.*"]))[0], (
        await register(runtime, owner, receiver.url("/j"), ["job.queued"]))[0]
    await emit(runtime, owner.organization_id, "account.connected")
    await emit(runtime, owner.organization_id, "account.token_expired")
    assert [d.event_type for d in await deliveries(runtime, accounts)] == ["account.connected", "account.token_expired"]
    assert await deliveries(runtime, jobs) == []


async def test_a_disabled_or_deleted_endpoint_is_owed_nothing(runtime, owner, receiver):
    disabled, _ = await register(runtime, owner, receiver.url("/off"))
    deleted, _ = await register(runtime, owner, receiver.url("/gone"))
    async with runtime.database.write() as session:
        await endpoints.set_enabled(session, owner, disabled, False)
        await endpoints.delete_endpoint(session, owner, deleted)
    await emit(runtime, owner.organization_id)
    assert await deliveries(runtime, disabled) == [] and await deliveries(runtime, deleted) == []


async def test_all_children_receives_each_direct_childs_events_with_their_organization_id(runtime, owner, receiver):
    async with runtime.database.write() as session:
        child = await create_organization(session, "Child", parent_id=owner.organization_id)
        stranger = await create_organization(session, "Stranger")
    firehose, secret = await register(runtime, owner, receiver.url("/all"), scope="all_children")
    own, _ = await register(runtime, owner, receiver.url("/own"))
    await emit(runtime, child.id)
    await emit(runtime, stranger.id)
    assert await deliveries(runtime, own) == []
    [delivery] = await deliveries(runtime, firehose)
    assert delivery.organization_id == owner.organization_id  # the log belongs to the endpoint's organization

    assert await deliver(runtime) == [1]
    [request] = receiver.at("/all")
    assert verified(secret, request)["data"]["organizationId"] == child.id


async def test_all_children_needs_org_admin(runtime, owner, receiver):
    narrow = Principal(owner.api_key_id, owner.organization_id, ("webhooks:write",))
    with pytest.raises(UserError) as refused:
        await register(runtime, narrow, receiver.url("/x"), scope="all_children")
    assert refused.value.code == "ORG_ADMIN_REQUIRED"


# --- delivery -----------------------------------------------------------------------------------


async def test_every_delivery_verifies_with_standardwebhooks(runtime, owner, receiver):
    endpoint_id, secret = await register(runtime, owner, receiver.url("/hook"))
    assert secret.startswith("whsec_")
    await emit(runtime, owner.organization_id, "account.connected", provider="sandbox")
    await emit(runtime, owner.organization_id, "account.token_expired", reason="refresh refused")
    assert await deliver(runtime) == [2]
    requests = receiver.at("/hook")
    bodies = [verified(secret, r) for r in requests]
    assert sorted(b["type"] for b in bodies) == ["account.connected", "account.token_expired"]
    for body in bodies:
        assert set(body) == {"type", "timestamp", "data"}
        assert body["data"]["organizationId"] == owner.organization_id and body["data"]["accountId"] == "acct_x"
    assert {r.headers["webhook-id"] for r in requests} == {d.id for d in await deliveries(runtime, endpoint_id)}
    assert all(r.headers["webhook-signature"].startswith("v1,") for r in requests)
    with pytest.raises(WebhookVerificationError):  # a body changed on the way no longer verifies
        Webhook(secret).verify(requests[0].body.replace(b"acct_x", b"acct_y"), requests[0].headers)
    assert {d.status for d in await deliveries(runtime, endpoint_id)} == {"delivered"}


async def test_a_receiver_failing_three_times_gets_the_same_webhook_id_on_the_fourth_attempt(runtime, owner, receiver):
    endpoint_id, secret = await register(runtime, owner, receiver.url("/flaky"))
    receiver.script("/flaky", 500, 502, (503, {}, b"busy"))
    await emit(runtime, owner.organization_id)
    assert await deliver(runtime, rounds=5, ladder=NO_WAIT) == [1, 1, 1, 1, 0]
    requests = receiver.at("/flaky")
    assert len(requests) == 4
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert all(verified(secret, r)["type"] == "account.connected" for r in requests)
    [delivery] = await deliveries(runtime, endpoint_id)
    assert (delivery.id, delivery.status, delivery.attempt_count) == (requests[0].headers["webhook-id"], "delivered", 4)
    tried = await attempts(runtime, delivery.id)
    assert [(a.number, a.status_code, a.error) for a in tried] == [
        (1, 500, "HTTP_500"), (2, 502, "HTTP_502"), (3, 503, "HTTP_503"), (4, 200, None),
    ]
    assert tried[2].response_excerpt == "busy"


async def test_the_ladder_spaces_the_attempts_and_ends_after_eight(runtime, owner, receiver):
    clock = FakeClock()
    endpoint_id, _ = await register(runtime, owner, receiver.url("/down"))
    receiver.script("/down", *([500] * 10))
    await emit(runtime, owner.organization_id)
    async with runtime.database.write() as session:  # the event was due "now" in real time; the fake clock is later
        await session.execute(WebhookDelivery.__table__.update().values(next_attempt_at=clock.now))
    dispatcher = WebhookDispatcher(runtime, clock=clock)
    try:
        assert await dispatcher.run_once() == 1
        for wait in LADDER[1:]:
            [delivery] = await deliveries(runtime, endpoint_id)
            assert delivery.next_attempt_at == clock.now + timedelta(seconds=wait)
            clock.advance(seconds=wait - 1)
            assert await dispatcher.run_once() == 0  # not yet
            clock.advance(seconds=1)
            assert await dispatcher.run_once() == 1
        [delivery] = await deliveries(runtime, endpoint_id)
    finally:
        await dispatcher.stop()
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("failed", 8, None)
    assert len(receiver.at("/down")) == 8


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_on_a_throttling_answer_is_honoured(runtime, owner, receiver, status):
    clock = FakeClock()
    endpoint_id, _ = await register(runtime, owner, receiver.url("/slow"))
    receiver.script("/slow", (status, {"Retry-After": "120"}, b""))
    await emit(runtime, owner.organization_id)
    async with runtime.database.write() as session:
        await session.execute(WebhookDelivery.__table__.update().values(next_attempt_at=clock.now))
    await deliver(runtime, clock=clock)
    [delivery] = await deliveries(runtime, endpoint_id)
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=120)  # not the ladder's 5 s


async def test_410_disables_the_endpoint_with_an_org_event(runtime, owner, receiver):
    endpoint_id, _ = await register(runtime, owner, receiver.url("/gone"))
    watcher, watcher_secret = await register(runtime, owner, receiver.url("/watch"), ["webhook.*"])
    receiver.script("/gone", 410)
    await emit(runtime, owner.organization_id)
    await deliver(runtime, rounds=2)  # the second: the disabling event's own delivery, to the endpoint that wants webhook.*
    async with runtime.database.read() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        events = (await session.execute(select(OrganizationEvent).where(OrganizationEvent.kind == "webhook.endpoint_disabled"))).scalars().all()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert [(e.subject_id, e.payload["reason"]) for e in events] == [(endpoint_id, "gone")]
    [delivery] = await deliveries(runtime, endpoint_id)
    assert delivery.status == "failed"
    [told] = receiver.at("/watch")
    assert verified(watcher_secret, told)["data"] == {
        "endpointId": endpoint_id, "reason": "gone", "failingSince": events[0].payload["failingSince"],
        "organizationId": owner.organization_id,
    }


async def test_an_endpoint_failing_for_five_days_is_disabled(runtime, owner, receiver):
    clock = FakeClock()
    endpoint_id, _ = await register(runtime, owner, receiver.url("/dead"))
    receiver.script("/dead", *([500] * 50))
    dispatcher = WebhookDispatcher(runtime, clock=clock, ladder=NO_WAIT)

    async def fail_once() -> WebhookEndpoint:
        await emit(runtime, owner.organization_id)
        async with runtime.database.write() as session:
            await session.execute(WebhookDelivery.__table__.update().values(next_attempt_at=clock.now))
        await dispatcher.run_once()
        async with runtime.database.read() as session:
            return await session.get(WebhookEndpoint, endpoint_id)

    try:
        first = await fail_once()
        assert (first.enabled, first.failing_since) == (True, clock.now)
        clock.advance(days=4, hours=23)
        assert (await fail_once()).enabled is True
        clock.advance(hours=1)
        last = await fail_once()
    finally:
        await dispatcher.stop()
    assert (last.enabled, last.disabled_reason) == (False, "failing")
    async with runtime.database.read() as session:
        reasons = (await session.execute(select(OrganizationEvent.payload).where(OrganizationEvent.kind == "webhook.endpoint_disabled"))).scalars().all()
    assert [r["reason"] for r in reasons] == ["failing"]


async def test_a_success_ends_the_failing_streak(runtime, owner, receiver):
    endpoint_id, _ = await register(runtime, owner, receiver.url("/wobbly"))
    receiver.script("/wobbly", 500)
    await emit(runtime, owner.organization_id)
    dispatcher = WebhookDispatcher(runtime, ladder=NO_WAIT)
    try:
        await dispatcher.run_once()
        async with runtime.database.read() as session:
            assert (await session.get(WebhookEndpoint, endpoint_id)).failing_since is not None
        await dispatcher.run_once()
    finally:
        await dispatcher.stop()
    async with runtime.database.read() as session:
        assert (await session.get(WebhookEndpoint, endpoint_id)).failing_since is None


async def test_rotation_signs_with_both_secrets_for_24_hours(runtime, owner, receiver):
    clock = FakeClock()
    endpoint_id, old = await register(runtime, owner, receiver.url("/rot"))
    async with runtime.database.write() as session:
        rotated = await endpoints.rotate_secret(session, owner, runtime.secret_key, endpoint_id)
        rotated.endpoint.previous_secret_expires_at = clock.now + timedelta(hours=24)
    new = rotated.secret
    assert new != old and new.startswith("whsec_")
    dispatcher = WebhookDispatcher(runtime, clock=clock)
    try:
        for hours in (23, 2):  # inside the overlap, then after it
            await emit(runtime, owner.organization_id)
            clock.advance(hours=hours)
            async with runtime.database.write() as session:
                await session.execute(WebhookDelivery.__table__.update().values(next_attempt_at=clock.now))
            await dispatcher.run_once()
    finally:
        await dispatcher.stop()
    during, after = receiver.at("/rot")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verified(old, during) and verified(new, during)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verified(new, after)
    with pytest.raises(WebhookVerificationError):
        verified(old, after)


# --- what a call may and may not do -----------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.0.0.5/hook", "http://[::1]/x", "ftp://example.com/x"])
async def test_the_ssrf_guard_refuses_a_private_url_at_registration(runtime, owner, url):
    async with runtime.database.write() as session:
        with pytest.raises(UserError) as refused:
            await endpoints.create_endpoint(session, owner, runtime.secret_key, url=url, event_types=["*"], allow_private=False)
    assert refused.value.code in ("URL_NOT_ALLOWED", "URL_SCHEME_NOT_ALLOWED") and refused.value.field == ["url"]


async def test_the_ssrf_guard_refuses_a_private_url_again_at_delivery(tmp_path, receiver):
    """Registered while private addresses were allowed; the worker of a stricter installation refuses the call."""
    async with another_runtime(tmp_path, "strict") as (strict, principal):
        endpoint_id, _ = await register(strict, principal, receiver.url("/private"))
        await emit(strict, principal.organization_id)
        await deliver(strict)
        [delivery] = await deliveries(strict, endpoint_id)
        assert [a.error for a in await attempts(strict, delivery.id)] == ["URL_NOT_ALLOWED"]
    assert receiver.at("/private") == []


async def test_a_redirect_is_a_failure_and_is_not_followed(runtime, owner, receiver):
    endpoint_id, _ = await register(runtime, owner, receiver.url("/moved"))
    receiver.script("/moved", (307, {"Location": receiver.url("/elsewhere")}, b""))
    await emit(runtime, owner.organization_id)
    await deliver(runtime)
    [delivery] = await deliveries(runtime, endpoint_id)
    assert (delivery.status, delivery.last_error) == ("pending", "HTTP_307")
    assert receiver.at("/elsewhere") == []


async def test_only_the_first_4_kb_of_an_answer_is_kept(runtime, owner, receiver):
    endpoint_id, _ = await register(runtime, owner, receiver.url("/chatty"))
    receiver.script("/chatty", (200, {}, b"x" * 10_000))
    await emit(runtime, owner.organization_id)
    await deliver(runtime)
    [delivery] = await deliveries(runtime, endpoint_id)
    [attempt] = await attempts(runtime, delivery.id)
    assert attempt.response_excerpt == "x" * 4096


async def test_a_call_that_outlives_its_share_of_the_lease_times_out(tmp_path, receiver):
    async with another_runtime(tmp_path, "quick", allow_private_urls=True, webhook_lease_seconds=1) as (quick, principal):
        endpoint_id, _ = await register(quick, principal, receiver.url("/hang"))
        receiver.hanging.add("/hang")
        await emit(quick, principal.organization_id)
        await deliver(quick)
        [delivery] = await deliveries(quick, endpoint_id)
        assert (delivery.status, delivery.last_error) == ("pending", "TIMEOUT")


async def test_a_hanging_endpoint_never_delays_another(runtime, owner, receiver):
    hanging, _ = await register(runtime, owner, receiver.url("/hang"))
    healthy, secret = await register(runtime, owner, receiver.url("/fine"))
    receiver.hanging.add("/hang")
    dispatcher = WebhookDispatcher(runtime)
    runtime.webhook_dispatcher = dispatcher
    dispatcher.start()
    try:
        events = 3 * PER_ENDPOINT
        for n in range(events):
            await emit(runtime, owner.organization_id, n=n)
        delivered = await receiver.wait_for("/fine", events)
        assert sorted(verified(secret, r)["data"]["n"] for r in delivered) == list(range(events))
        # The hanging endpoint holds at most its share of calls; the rest of its deliveries wait.
        assert len(receiver.at("/hang")) == PER_ENDPOINT
        async with runtime.database.read() as session:
            waiting = (await session.execute(select(func.count()).where(
                WebhookDelivery.endpoint_id == hanging, WebhookDelivery.status == "pending"))).scalar()
        assert waiting == events - PER_ENDPOINT
    finally:
        receiver.release.set()
        runtime.webhook_dispatcher = None
        await dispatcher.stop()


async def test_the_signed_body_is_the_stored_payload(runtime, owner, receiver):
    endpoint_id, secret = await register(runtime, owner, receiver.url("/exact"))
    await emit(runtime, owner.organization_id, text="héllo")
    await deliver(runtime)
    [request] = receiver.at("/exact")
    [delivery] = await deliveries(runtime, endpoint_id)
    assert json.loads(request.body) == delivery.payload == verified(secret, request)
