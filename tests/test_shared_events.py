"""Subscribers of one document share one execution per event (the fan-out's main cost), through ``schema.fanout``."""

import asyncio
import json

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.core.clock import utcnow
from gateway.events import BusEvent
from schema.context import Context
from schema.fanout import Delivery, FanoutHub, transport_ws_frame
from tests.conftest import make_org_with_key
from tests.waiting import until

ORG_EVENTS = 'subscription { orgEvents(kinds: ["job."]) { kind seq payload } }'


class Socket:
    """A subscriber's socket: the frames written to it, and a signal when one arrives."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.arrived = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.frames.append(text)
        self.arrived.set()


async def _counted(api, monkeypatch):
    """An organization, a hub over the real schema, a maker of subscriber contexts, and the executions it records."""
    from gateway.auth.keys import authenticate
    from schema.root import build_schema

    owner = await make_org_with_key(api.runtime)
    async with api.runtime.database.read() as session:
        principal = await authenticate(session, owner.secret)
    executions = []
    original = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counting(self, *args, **kwargs):
        executions.append(self.root_value)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counting)

    def context():
        return Context(runtime=api.runtime, request=None, response=None, request_id="req_test", principal_or_error=principal)

    return owner, FanoutHub(build_schema()), context, executions


def _join(hub: FanoutHub, organization_id: str, query: str, context, socket: Socket) -> asyncio.Task:
    delivery = Delivery(hub=hub, operation_id="1", query=query, variables=None, operation_name=None, context=context(),
                        root_value=None, envelope=transport_ws_frame, send_text=socket.send_text)

    async def member() -> str | None:
        async with hub.join(organization_id, delivery, context) as joined:
            return await joined.ended

    return asyncio.create_task(member())


async def test_one_execution_per_event_for_identical_subscriptions(api, monkeypatch):
    owner, hub, context, executions = await _counted(api, monkeypatch)
    sockets = [Socket() for _ in range(4)]
    tasks = [_join(hub, owner.organization_id, ORG_EVENTS, context, socket) for socket in sockets[:3]]
    tasks.append(_join(hub, owner.organization_id, 'subscription { orgEvents { kind } }', context, sockets[3]))
    await until(lambda: api.runtime.events.subscriber_count() == 2)  # one bus subscription per document
    executions.clear()
    await api.runtime.events.publish(BusEvent(owner.organization_id, "job.queued", {"jobId": "job_x"}, utcnow(), job_id="job_" + "x" * 24, seq=1))
    await asyncio.wait_for(asyncio.gather(*(socket.arrived.wait() for socket in sockets)), 5)
    results = [json.loads(socket.frames[0])["payload"]["data"]["orgEvents"] for socket in sockets]
    assert [r["kind"] for r in results] == ["job.queued"] * 4
    assert results[0] == results[1] == results[2]
    # One execution for the three identical documents, one for the other document.
    assert len(executions) == 2
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_document_parsed_again_shares_the_result_keyed_by_its_text(api, monkeypatch):
    """The shared stream is keyed on the document's text, not on the id() of a parsed object that can be collected."""
    from strawberry.extensions.parser_cache import _get_parse_cache

    from schema.root import DOCUMENT_CACHE_SIZE

    owner, hub, context, executions = await _counted(api, monkeypatch)
    sockets, tasks = [Socket(), Socket()], []
    for count, socket in enumerate(sockets, start=1):
        _get_parse_cache(DOCUMENT_CACHE_SIZE).cache_clear()  # as if evicted: the same text, a new parsed object
        tasks.append(_join(hub, owner.organization_id, ORG_EVENTS, context, socket))
        await until(lambda count=count: hub.member_count() == count and api.runtime.events.subscriber_count() == 1)
    executions.clear()
    await api.runtime.events.publish(BusEvent(owner.organization_id, "job.queued", {"jobId": "job_y"}, utcnow(), job_id="job_" + "y" * 24, seq=1))
    await asyncio.wait_for(asyncio.gather(*(socket.arrived.wait() for socket in sockets)), 5)
    assert sockets[0].frames == sockets[1].frames and "job.queued" in sockets[0].frames[0]
    assert len(executions) == 1
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
