"""Subscribers of one document share one execution per event (the fan-out's main cost)."""

import asyncio

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.core.clock import utcnow
from gateway.events.bus import BusEvent
from schema.context import Context
from tests.conftest import make_org_with_key
from tests.waiting import until

ORG_EVENTS = 'subscription { orgEvents(kinds: ["job."]) { kind seq payload } }'


async def _counted(api, monkeypatch):
    """An organization, a schema, a maker of subscriber contexts, and the list of executions it records."""
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

    return owner, build_schema(), context, executions


async def test_one_execution_per_event_for_identical_subscriptions(api, monkeypatch):
    owner, schema, context, executions = await _counted(api, monkeypatch)
    streams = [await schema.subscribe(ORG_EVENTS, context_value=context()) for _ in range(3)]
    other = await schema.subscribe('subscription { orgEvents { kind } }', context_value=context())
    firsts = [asyncio.ensure_future(stream.__anext__()) for stream in [*streams, other]]
    await until(lambda: api.runtime.events.subscriber_count() == 4)  # every subscription's resolver is on the bus
    executions.clear()
    await api.runtime.events.publish(BusEvent(owner.organization_id, "job.queued", {"jobId": "job_x"}, utcnow(), job_id="job_" + "x" * 24, seq=1))
    results = await asyncio.wait_for(asyncio.gather(*firsts), 5)
    assert [r.data["orgEvents"]["kind"] for r in results] == ["job.queued"] * 4
    assert results[0].data == results[1].data == results[2].data
    # One execution for the three identical documents, one for the other document.
    assert len(executions) == 2
    for stream in [*streams, other]:
        await stream.aclose()


async def test_a_document_parsed_again_shares_the_result_keyed_by_its_text(api, monkeypatch):
    """The shared result is keyed on the document's text, not on the id() of a parsed object that can be collected."""
    from strawberry.extensions.parser_cache import _get_parse_cache

    from schema.root import DOCUMENT_CACHE_SIZE

    owner, schema, context, executions = await _counted(api, monkeypatch)
    streams, firsts = [], []
    for count in (1, 2):
        _get_parse_cache(DOCUMENT_CACHE_SIZE).cache_clear()  # as if evicted: the same text, a new parsed object
        streams.append(await schema.subscribe(ORG_EVENTS, context_value=context()))
        firsts.append(asyncio.ensure_future(streams[-1].__anext__()))  # parsed now, on its first step
        await until(lambda: api.runtime.events.subscriber_count() == count)  # its resolver is on the bus
    executions.clear()
    await api.runtime.events.publish(BusEvent(owner.organization_id, "job.queued", {"jobId": "job_y"}, utcnow(), job_id="job_" + "y" * 24, seq=1))
    results = await asyncio.wait_for(asyncio.gather(*firsts), 5)
    assert results[0].data == results[1].data and results[0].data["orgEvents"]["kind"] == "job.queued"
    assert len(executions) == 1
    for stream in streams:
        await stream.aclose()
