"""Live subscriptions against the real server: graphql-transport-ws, legacy graphql-ws, and SSE."""

import asyncio
import contextlib
import json
import re
import subprocess
import sys

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport

from gateway.core.clock import utcnow
from gateway.events import SLOW_CONSUMER, BusEvent, MemoryEventBus, SubscriptionClosed
from tests.servers import FAST_RETRIES, serve

pytestmark = pytest.mark.e2e

JOB_EVENTS = gql("subscription($id: ID!, $after: Int!) { jobEvents(jobId: $id, afterSeq: $after) { seq kind payload } }")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("subscriptions")
    with serve(workdir, "--demo", env=FAST_RETRIES) as server:
        key = re.search(r"sg_live_[A-Za-z0-9]{44}", server.stdout()).group(0)
        yield server, key


def _graphql(server, key, query, variables=None):
    response = httpx.post(server.base_url + "/graphql", json={"query": query, "variables": variables or {}},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _sandbox_account(server, key, handle, **credentials):
    data = _graphql(server, key, 'mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } } }',
                    {"c": {"handle": handle, **credentials}})
    return data["connectAccount"]["account"]["id"]


def _post_and_publish(server, key, accounts, text="live!"):
    created = _graphql(server, key, "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code } } }",
                       {"i": {"text": text, "targets": [{"accountId": a} for a in accounts]}})
    post_id = created["createPost"]["post"]["id"]
    job = _graphql(server, key, "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } } }", {"id": post_id})
    return post_id, job["publishPost"]["job"]["id"]


def _stored(server, key, job_id):
    return _graphql(server, key, "query($id: ID!) { job(id: $id) { status events { seq kind } } }", {"id": job_id})["job"]


def _transport(server, key, subprotocol=WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL):
    """A gql WebSocket transport to the server, as ``key``.

    The server never sends "complete" for an operation the client stopped or that failed; gql
    waits ``close_timeout`` for it when the session ends, 10 s by default, which is no part of
    any test here.
    """
    return WebsocketsTransport(
        url=server.base_url.replace("http", "ws") + "/graphql",
        init_payload={"Authorization": f"Bearer {key}"},
        subprotocols=[subprotocol],
        close_timeout=0.5,
    )


async def _collect(server, key, job_id, after=0, subprotocol=WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL):
    transport = _transport(server, key, subprotocol)
    received = []
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        request = GraphQLRequest(JOB_EVENTS, variable_values={"id": job_id, "after": after})
        async for result in session.subscribe(request):
            received.append((result["jobEvents"]["seq"], result["jobEvents"]["kind"]))
    return received


@pytest.mark.parametrize(
    "subprotocol",
    [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL],
    ids=["graphql-transport-ws", "graphql-ws"],
)
async def test_every_event_of_a_publish_arrives_in_order(live, subprotocol):
    server, key = live
    # One transient failure first, so the job has retries to report.
    handle = subprotocol.replace("-", "_")
    accounts = [_sandbox_account(server, key, f"flaky_{handle}", failure_mode="transient", failure_count="1"),
                _sandbox_account(server, key, f"ok_{handle}")]
    post_id, job_id = _post_and_publish(server, key, accounts)
    received = await asyncio.wait_for(_collect(server, key, job_id, subprotocol=subprotocol), 60)
    stored = _stored(server, key, job_id)
    assert stored["status"] == "SUCCEEDED"
    assert received == [(e["seq"], e["kind"]) for e in stored["events"]]
    assert received[-1][1] == "job.succeeded"
    assert ("target.retry_pending" in {k for _, k in received})


async def test_resuming_with_after_seq_loses_nothing(live):
    server, key = live
    _, job_id = _post_and_publish(server, key, [_sandbox_account(server, key, "resume")])
    first = await asyncio.wait_for(_collect(server, key, job_id), 60)
    middle = first[len(first) // 2][0]
    resumed = await asyncio.wait_for(_collect(server, key, job_id, after=middle), 60)
    assert resumed == [event for event in first if event[0] > middle]


async def test_sse_streams_the_same_events(live):
    server, key = live
    _, job_id = _post_and_publish(server, key, [_sandbox_account(server, key, "sse")])
    events = []
    body = {"query": "subscription($id: ID!) { jobEvents(jobId: $id) { seq kind } }", "variables": {"id": job_id}}
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("POST", server.base_url + "/graphql", json=body,
                               headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data:") and line[5:].strip():
                    payload = json.loads(line[5:])
                    if "data" in payload:
                        events.append((payload["data"]["jobEvents"]["seq"], payload["data"]["jobEvents"]["kind"]))
                if line.startswith("event: complete"):
                    break
    assert events == [(e["seq"], e["kind"]) for e in _stored(server, key, job_id)["events"]]


async def test_missing_or_bad_auth_is_refused(live):
    import websockets

    server, _ = live
    url = server.base_url.replace("http", "ws") + "/graphql"
    for payload in ({}, {"Authorization": "Bearer sg_live_" + "x" * 44}):
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd.code == 4403


async def test_another_orgs_job_is_not_found(live, tmp_path):
    server, key = live
    _, job_id = _post_and_publish(server, key, [_sandbox_account(server, key, "mine")])
    # The demo key's organization owns the job; a key of a new organization, minted by the CLI, asks for it.
    env = {"SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{server.stdout_path.parent}/socialgate.db"}
    org_id = subprocess.run([sys.executable, "-m", "gateway", "orgs", "create", "Other"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    other_key = subprocess.run([sys.executable, "-m", "gateway", "keys", "create", "--org", org_id, "--scope", "*"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip()
    transport = _transport(server, other_key)
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        with pytest.raises(Exception, match="No job with that id"):
            async for _ in session.subscribe(GraphQLRequest(JOB_EVENTS, variable_values={"id": job_id, "after": 0})):
                pass


async def test_org_events_firehose_is_scoped_and_filtered(live):
    """orgEvents replays nothing, so the test publishes until the stream shows a job from its start.

    Posts published before the subscription reached the server are simply not seen; the first
    ``job.queued`` the stream carries names the job followed to its end. No wait is guessed.
    """
    server, key = live
    account = _sandbox_account(server, key, "firehose")
    transport = _transport(server, key)
    events = []
    followed: list[str] = []
    first_job = asyncio.Event()
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        stream = session.subscribe(gql('subscription { orgEvents(kinds: ["job.", "post.status_changed"]) { kind jobId payload } }'))

        async def read():
            async for result in stream:
                event = result["orgEvents"]
                events.append(event)
                if not followed and event["kind"] == "job.queued":
                    followed.append(event["jobId"])
                    first_job.set()
                if followed and event["kind"] == "job.succeeded" and event["jobId"] == followed[0]:
                    return

        reader = asyncio.create_task(read())
        async with asyncio.timeout(60):
            while not first_job.is_set():
                await asyncio.to_thread(_post_and_publish, server, key, [account])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_job.wait(), 2)  # else the subscription was not in place yet
            await reader
    kinds = [event["kind"] for event in events if event["jobId"] == followed[0]]
    assert kinds[0] == "job.queued" and kinds[-1] == "job.succeeded"
    assert all(e["kind"].startswith("job.") or e["kind"] == "post.status_changed" for e in events)
    assert "target.published" not in [e["kind"] for e in events]


async def test_a_slow_subscriber_is_closed_with_a_reason():
    bus = MemoryEventBus(queue_size=5)
    slow = bus.subscribe("org_x")
    fast = bus.subscribe("org_x")
    for n in range(6):
        await bus.publish(BusEvent("org_x", "k", {"n": n}, utcnow()))
        if not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.closed_reason == SLOW_CONSUMER
    assert slow.queue.qsize() == 5  # bounded: nothing was added past the limit
    drained = [await slow.next() for _ in range(5)]
    assert [e.payload["n"] for e in drained] == [0, 1, 2, 3, 4]
    with pytest.raises(SubscriptionClosed):
        await slow.next()
    assert fast.closed_reason is None and bus.subscriber_count() == 1
