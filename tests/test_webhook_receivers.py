"""The outbox keeps each organization's endpoints between writes, and forgets them on any change.

Every engine write asks which endpoints its events go to; these tests hold the kept answer to
the endpoints as they are: a write of an organization without endpoints runs no lookup at all,
and an endpoint created, edited, disabled (by hand or by the dispatcher), deleted (or created in a transaction that rolled
back) shows in the very next event's deliveries. A change made where this process's sessions
cannot see it (another process) shows once the answer's time runs out, moved by a fake timer.
"""

from __future__ import annotations

import pytest
from cachetools import TTLCache
from sqlalchemy import event, insert, select

from gateway.auth.keys import Principal
from gateway.core import new_id, utcnow
from gateway.events import record_org_event
from gateway.orgs.organizations import create_organization
from gateway.runtime import Runtime
from gateway.settings import load_settings
from gateway.storage.staging import write_staged
from gateway.storage.models import WebhookDelivery, WebhookEndpoint
from gateway.webhooks import endpoints, outbox
from gateway.webhooks.dispatcher import WebhookDispatcher
from tests.conftest import make_org_with_key
from tests.webhook_receiver import running_receiver

URL = "http://127.0.0.1:9/in"  # never called: these tests only read what is owed


@pytest.fixture
def settings(tmp_path):
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), allow_private_urls=True)


@pytest.fixture
async def owner(runtime: Runtime) -> Principal:
    made = await make_org_with_key(runtime)
    return Principal(made.api_key_id, made.organization_id, ("*",))


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timer(monkeypatch) -> FakeTimer:
    """The kept answers' clock, moved by the test."""
    fake = FakeTimer()
    monkeypatch.setattr(outbox.RECEIVERS, "kept", TTLCache(maxsize=100, ttl=outbox.RECEIVERS_SECONDS, timer=fake))
    return fake


@pytest.fixture
def lookups(runtime: Runtime) -> list[str]:
    """The endpoint lookups the database was asked for."""
    seen: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:
        if "FROM webhook_endpoints" in statement:
            seen.append(statement)

    engines = {runtime.database.engine.sync_engine, runtime.database.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", note)


async def emit(runtime: Runtime, organization_id: str, kind: str = "account.connected") -> None:
    async with runtime.database.write() as session:
        await record_org_event(session, organization_id, kind, {"accountId": "acct_x"})


async def owed(runtime: Runtime) -> list[tuple[str, str]]:
    """(endpoint, event kind) of every delivery written, oldest first."""
    async with runtime.database.read() as session:
        rows = await session.execute(select(WebhookDelivery.endpoint_id, WebhookDelivery.event_type).order_by(WebhookDelivery.created_at))
        return [tuple(row) for row in rows]


async def register(runtime: Runtime, principal: Principal, event_types=("*",), scope: str = "own", url: str = URL) -> str:
    async with runtime.database.write() as session:
        made = await endpoints.create_endpoint(session, principal, runtime.secret_key, url=url, event_types=list(event_types), scope=scope, allow_private=True)
    return made.endpoint.id


async def test_an_organization_without_endpoints_is_looked_up_once(runtime, owner, timer, lookups):
    for _ in range(3):
        await emit(runtime, owner.organization_id)
    assert len(lookups) == 1
    assert await owed(runtime) == []


async def test_an_endpoint_created_receives_the_next_event(runtime, owner, timer, lookups):
    await emit(runtime, owner.organization_id)  # the answer "none" is kept
    endpoint_id = await register(runtime, owner)
    await emit(runtime, owner.organization_id, "account.token_expired")
    assert await owed(runtime) == [(endpoint_id, "account.token_expired")]
    await emit(runtime, owner.organization_id)
    assert len(lookups) == 2  # before the endpoint, and after it; the third event used the kept answer


async def test_edits_disabling_and_deleting_show_in_the_next_event(runtime, owner, timer):
    endpoint_id = await register(runtime, owner, ["account.*"])
    await emit(runtime, owner.organization_id)
    async with runtime.database.write() as session:
        await endpoints.update_endpoint(session, owner, endpoint_id, event_types=["job.*"])
    await emit(runtime, owner.organization_id)
    async with runtime.database.write() as session:
        await endpoints.update_endpoint(session, owner, endpoint_id, event_types=["*"])
    await emit(runtime, owner.organization_id, "account.token_expired")
    async with runtime.database.write() as session:
        await endpoints.set_enabled(session, owner, endpoint_id, False)
    await emit(runtime, owner.organization_id)
    async with runtime.database.write() as session:
        await endpoints.set_enabled(session, owner, endpoint_id, True)
    await emit(runtime, owner.organization_id, "metrics.updated")
    async with runtime.database.write() as session:
        await endpoints.delete_endpoint(session, owner, endpoint_id)
    await emit(runtime, owner.organization_id)
    assert [kind for _, kind in await owed(runtime)] == ["account.connected", "account.token_expired", "metrics.updated"]


async def test_an_endpoint_created_in_a_rolled_back_transaction_is_owed_nothing(runtime, owner, timer):
    with pytest.raises(RuntimeError):
        async with runtime.database.write() as session:
            await endpoints.create_endpoint(session, owner, runtime.secret_key, url=URL, event_types=["*"], allow_private=True)
            await record_org_event(session, owner.organization_id, "account.connected", {"accountId": "acct_x"})
            await write_staged(session)  # the lookup runs inside the transaction, and finds the new endpoint
            raise RuntimeError("the transaction fails after the endpoint and its event")
    await emit(runtime, owner.organization_id)  # must not be owed to the endpoint that never was
    assert await owed(runtime) == []


async def test_a_child_organization_reaches_its_parents_all_children_endpoint(runtime, owner, timer):
    async with runtime.database.write() as session:
        child = await create_organization(session, "Child", parent_id=owner.organization_id)
    await emit(runtime, child.id)
    firehose = await register(runtime, owner, scope="all_children")
    await emit(runtime, child.id, "account.token_expired")
    assert await owed(runtime) == [(firehose, "account.token_expired")]


async def test_another_processs_change_shows_once_the_kept_answer_runs_out(runtime, owner, timer):
    await emit(runtime, owner.organization_id)
    endpoint_id = new_id("whk")
    async with runtime.database.engine.begin() as connection:  # not through this process's sessions
        now = utcnow()
        await connection.execute(insert(WebhookEndpoint.__table__).values(
            id=endpoint_id, organization_id=owner.organization_id, url=URL, event_types=["*"], description="", scope="own",
            secret=b"sealed", enabled=True, created_at=now, updated_at=now,
        ))
    await emit(runtime, owner.organization_id)
    assert await owed(runtime) == []  # within the kept answer's time
    timer.now += outbox.RECEIVERS_SECONDS + 0.01
    await emit(runtime, owner.organization_id, "account.token_expired")
    assert await owed(runtime) == [(endpoint_id, "account.token_expired")]



async def test_an_endpoint_the_dispatcher_disables_is_owed_nothing_more(runtime, owner, timer):
    async with running_receiver() as receiver:
        endpoint_id = await register(runtime, owner, url=receiver.url("/gone"))
        receiver.script("/gone", 410)
        await emit(runtime, owner.organization_id)  # kept: the endpoint receives
        dispatcher = WebhookDispatcher(runtime)
        try:
            assert await dispatcher.run_once() == 1  # 410: the dispatcher disables it
        finally:
            await dispatcher.stop()
    await emit(runtime, owner.organization_id, "account.token_expired")
    assert await owed(runtime) == [(endpoint_id, "account.connected")]
