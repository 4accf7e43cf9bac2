"""Open subscriptions end when their key stops standing: revoked, expired, switched off, suspended.

Each test opens real WebSockets on a real server (uvicorn in this process): `orgEvents` and
`jobEvents` over graphql-transport-ws and `orgEvents` over the legacy graphql-ws, checks they
deliver, changes something about the key, and waits for each socket to be closed with 4403 and
a reason. Another organization's socket stays open and keeps receiving. The key re-check runs
every 50 ms here (SOCIALGATE_KEY_RECHECK_SECONDS).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import websockets
from sqlalchemy import update

from gateway.app import create_app
from gateway.auth.keys import mint_key, set_key_disabled
from gateway.core import clock
from gateway.engine.jobs import create_job
from gateway.events import BusEvent, record_job_event
from gateway.orgs.organizations import create_organization, set_kill_switch
from gateway.runtime import Runtime
from gateway.settings import load_settings
from gateway.storage.models import Organization
from gateway.web import FrameWritingProtocol
from schema.fanout import FanoutHub
from tests.conftest import OrgWithKey, make_org_with_key
from tests.oauth_platform import serving

ORG_EVENTS = "subscription { orgEvents { kind } }"
JOB_EVENTS = "subscription($id: ID!) { jobEvents(jobId: $id) { seq kind } }"
TRANSPORT_WS, LEGACY_WS = "graphql-transport-ws", "graphql-ws"
WAIT = 10  # seconds: a bound on waiting for what must happen, never a measurement


@pytest.fixture
def settings(tmp_path):
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), key_recheck_seconds=0.05)


@dataclass
class Server:
    base: str
    runtime: Runtime
    hub: FanoutHub

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/graphql"

    async def graphql(self, key: str, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        async with httpx.AsyncClient(timeout=WAIT) as http:
            response = await http.post(self.base + "/graphql", json={"query": query, "variables": variables or {}},
                                       headers={"Authorization": f"Bearer {key}", **(headers or {})})
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


@asynccontextmanager
async def running(settings) -> AsyncIterator[Server]:
    app = create_app(settings)
    # The WebSocket protocol `socialgate serve` runs: frames go straight to the sockets being closed.
    async with serving(app, ws=FrameWritingProtocol, ws_per_message_deflate=False) as base:
        yield Server(base, app.state.runtime, app.state.fanout)


async def _subscribe(server: Server, key: str, protocol: str, query: str, variables: dict | None = None,
                     headers: dict | None = None) -> websockets.ClientConnection:
    socket = await websockets.connect(server.ws_url, subprotocols=[protocol])
    await socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}", **(headers or {})}}))
    assert json.loads(await asyncio.wait_for(socket.recv(), WAIT))["type"] == "connection_ack"
    start = "subscribe" if protocol == TRANSPORT_WS else "start"
    await socket.send(json.dumps({"id": "1", "type": start, "payload": {"query": query, "variables": variables or {}}}))
    return socket


async def _next(socket: websockets.ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
        if message["type"] in ("next", "data"):
            return message["payload"]["data"]


async def _closed(socket: websockets.ClientConnection) -> tuple[int, str]:
    """Wait for the server to close the socket; its close code and reason."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT):
            while True:
                await socket.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)


async def _job(runtime: Runtime, organization_id: str) -> str:
    async with runtime.database.write() as session:
        job = await create_job(session, organization_id, "publish", None, 1)
        await record_job_event(session, organization_id, job.id, "job.queued", {"jobId": job.id})
    return job.id


async def _live_subscribers(server: Server, owner: OrgWithKey, headers: dict | None = None) -> list[websockets.ClientConnection]:
    """orgEvents (both protocols) and jobEvents sockets of ``owner``'s key, each seen delivering."""
    runtime = server.runtime
    job_id = await _job(runtime, owner.organization_id)
    before = server.hub.member_count()
    sockets = [
        await _subscribe(server, owner.secret, TRANSPORT_WS, ORG_EVENTS, headers=headers),
        await _subscribe(server, owner.secret, LEGACY_WS, ORG_EVENTS, headers=headers),
        await _subscribe(server, owner.secret, TRANSPORT_WS, JOB_EVENTS, {"id": job_id}, headers),
    ]
    assert (await _next(sockets[2]))["jobEvents"]["kind"] == "job.queued"  # replayed
    await _until(lambda: server.hub.member_count() == before + 2)  # both orgEvents sockets joined their stream
    await runtime.publish(BusEvent(owner.organization_id, "probe.before", {}, clock.utcnow()))
    for socket in sockets[:2]:
        assert (await _next(socket))["orgEvents"]["kind"] == "probe.before"
    return sockets


async def _refused_then_bystander_served(server: Server, sockets: list[websockets.ClientConnection], code: str,
                                         bystander: websockets.ClientConnection, bystander_org: str) -> None:
    for socket in sockets:
        close_code, reason = await _closed(socket)
        assert close_code == 4403 and reason.startswith(code), reason
    await server.runtime.publish(BusEvent(bystander_org, "probe.after", {}, clock.utcnow()))
    assert (await _next(bystander))["orgEvents"]["kind"] == "probe.after"
    await bystander.close()
    await _until(lambda: len(server.runtime.key_watch) == 0)  # every closed socket let go of its watch


async def _check_trigger(settings, trigger: Callable[[Server, OrgWithKey, OrgWithKey], Awaitable[None]], code: str) -> None:
    async with running(settings) as server:
        owner = await make_org_with_key(server.runtime)
        admin = await make_org_with_key(server.runtime, "Bystander")  # another organization, untouched
        async with server.runtime.database.write() as session:  # a second key of the owner's organization
            second = (await mint_key(session, owner.organization_id, ["*"])).secret
        bystander = await _subscribe(server, admin.secret, TRANSPORT_WS, ORG_EVENTS)
        sockets = await _live_subscribers(server, owner)
        await trigger(server, owner, OrgWithKey(owner.organization_id, "", second))
        await _refused_then_bystander_served(server, sockets, code, bystander, admin.organization_id)


async def test_revoking_the_key_closes_its_subscriptions(settings):
    async def revoke(server: Server, owner: OrgWithKey, other_key: OrgWithKey) -> None:
        data = await server.graphql(other_key.secret, "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { userErrors { code } } }",
                                    {"id": owner.api_key_id})
        assert data["revokeApiKey"]["userErrors"] == []

    await _check_trigger(settings, revoke, "KEY_REVOKED")


async def test_the_keys_kill_switch_closes_its_subscriptions(settings):
    async def kill(server: Server, owner: OrgWithKey, _: OrgWithKey) -> None:
        async with server.runtime.database.write() as session:
            await set_key_disabled(session, owner.api_key_id, True)

    await _check_trigger(settings, kill, "KILL_SWITCH")


async def test_the_organizations_kill_switch_closes_its_subscriptions(settings):
    async def kill(server: Server, owner: OrgWithKey, _: OrgWithKey) -> None:
        async with server.runtime.database.write() as session:
            await set_kill_switch(session, owner.organization_id, True)

    await _check_trigger(settings, kill, "KILL_SWITCH")


async def test_the_global_kill_switch_closes_every_subscription(settings):
    async with running(settings) as server:
        owner = await make_org_with_key(server.runtime)
        sockets = await _live_subscribers(server, owner)
        server.runtime.settings = server.runtime.settings.model_copy(update={"kill_switch": True})
        for socket in sockets:
            close_code, reason = await _closed(socket)
            assert close_code == 4403 and reason.startswith("KILL_SWITCH"), reason


async def test_the_end_of_a_rotated_keys_grace_closes_its_subscriptions(settings, monkeypatch):
    async def rotate_and_wait_out_the_grace(server: Server, owner: OrgWithKey, _: OrgWithKey) -> None:
        data = await server.graphql(owner.secret, "mutation($id: ID!) { rotateApiKey(input: {id: $id}) { secret userErrors { code } } }",
                                    {"id": owner.api_key_id})
        assert data["rotateApiKey"]["secret"].startswith("sg_live_")
        later = clock.utcnow() + timedelta(hours=24, minutes=1)
        monkeypatch.setattr(clock, "utcnow", lambda: later)

    await _check_trigger(settings, rotate_and_wait_out_the_grace, "KEY_EXPIRED")


async def _parent_and_child(runtime: Runtime) -> tuple[OrgWithKey, OrgWithKey]:
    """A parent organization and its child, each with an all-scopes key."""
    parent = await make_org_with_key(runtime, "Parent")
    async with runtime.database.write() as session:
        child_org = await create_organization(session, "Child", parent_id=parent.organization_id)
        child_key = await mint_key(session, child_org.id, ["*"])
    return parent, OrgWithKey(child_org.id, child_key.key.id, child_key.secret)


async def test_suspending_an_organization_closes_its_keys_subscriptions_and_its_parents_acting_in_it(settings):
    async with running(settings) as server:
        runtime = server.runtime
        parent, child = await _parent_and_child(runtime)
        # The parent's own socket (acting in itself) must stay open: the suspension is the child's.
        bystander = await _subscribe(server, parent.secret, TRANSPORT_WS, ORG_EVENTS)
        sockets = await _live_subscribers(server, child)
        parent_in_child = OrgWithKey(child.organization_id, parent.api_key_id, parent.secret)
        acting = await _live_subscribers(server, parent_in_child, headers={"X-Socialgate-Org": child.organization_id})
        data = await server.graphql(parent.secret, "mutation($id: ID!) { suspendOrganization(input: {id: $id}) { userErrors { code } } }",
                                    {"id": child.organization_id})
        assert data["suspendOrganization"]["userErrors"] == []
        await _refused_then_bystander_served(server, [*sockets, *acting], "ORGANIZATION_SUSPENDED", bystander, parent.organization_id)


async def test_a_parent_kill_switch_closes_its_childrens_subscriptions(settings):
    """The parent's kill switch refuses its children's keys at authentication; open sockets follow."""
    async with running(settings) as server:
        runtime = server.runtime
        parent, child = await _parent_and_child(runtime)
        bystander = await make_org_with_key(runtime, "Bystander")
        watching = await _subscribe(server, bystander.secret, TRANSPORT_WS, ORG_EVENTS)
        sockets = await _live_subscribers(server, child)
        async with runtime.database.write() as session:
            await set_kill_switch(session, parent.organization_id, True)
        await _refused_then_bystander_served(server, sockets, "KILL_SWITCH", watching, bystander.organization_id)


async def test_an_sse_subscription_ends_with_the_reason_when_its_key_is_revoked(settings):
    """SSE has no socket to close: the subscription itself ends with an error naming the reason."""
    async with running(settings) as server:
        owner = await make_org_with_key(server.runtime)
        errors = []
        async with httpx.AsyncClient(timeout=WAIT) as http:
            async with http.stream("POST", server.base + "/graphql", json={"query": ORG_EVENTS},
                                   headers={"Authorization": f"Bearer {owner.secret}", "Accept": "text/event-stream"}) as response:
                await _until(lambda: server.runtime.events.subscriber_count() == 1)
                async with server.runtime.database.write() as session:
                    await session.execute(update(Organization).where(Organization.id == owner.organization_id).values(status="suspended"))
                async for line in response.aiter_lines():
                    if line.startswith("data:") and line[5:].strip():
                        errors.extend(json.loads(line[5:]).get("errors", []))
                    if line.startswith("event: complete"):
                        break
        assert [e["extensions"]["code"] for e in errors] == ["ORGANIZATION_SUSPENDED"]


async def test_a_shared_stream_outlives_the_key_and_the_socket_of_the_subscriber_that_started_it(settings):
    """12.9: a shared stream runs with a context of its own, not its first subscriber's."""
    import gc
    import weakref

    async with running(settings) as server:
        runtime, hub = server.runtime, server.hub
        owner = await make_org_with_key(runtime)
        async with runtime.database.write() as session:
            second = (await mint_key(session, owner.organization_id, ["jobs:read"])).secret
        first_socket = await _subscribe(server, owner.secret, TRANSPORT_WS, ORG_EVENTS)
        await _until(lambda: hub.member_count() == 1)
        [stream] = hub._streams.values()
        [first_member] = stream.members
        first_context = weakref.ref(first_member.delivery.context)
        del first_member
        later_socket = await _subscribe(server, second, TRANSPORT_WS, ORG_EVENTS)
        await _until(lambda: hub.member_count() == 2)
        assert hub.stream_count() == 1  # one stream for both keys

        await server.graphql(owner.secret, "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { userErrors { code } } }",
                             {"id": owner.api_key_id})
        close_code, reason = await _closed(first_socket)
        assert close_code == 4403 and reason.startswith("KEY_REVOKED")
        await _until(lambda: hub.member_count() == 1)
        await runtime.publish(BusEvent(owner.organization_id, "probe.after", {}, clock.utcnow()))
        assert (await _next(later_socket))["orgEvents"]["kind"] == "probe.after"
        assert hub._streams and next(iter(hub._streams.values())) is stream  # the same stream went on
        gc.collect()
        assert first_context() is None  # nothing holds the first subscriber's connection any more
        await later_socket.close()
