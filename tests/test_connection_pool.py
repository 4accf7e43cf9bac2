"""The provider pool: httpcore's behaviour, without its quadratic count of connections."""

import asyncio
from contextlib import asynccontextmanager

import anyio
import httpcore
import httpx
import pytest

from gateway.outbound.connection_pool import VERIFIED, LinearConnectionPool, pool_class
from gateway.outbound.url_guard import GuardedNetworkBackend, GuardedTransport


@asynccontextmanager
async def keep_alive_server(delay: float = 0.02):
    """HTTP/1.1 on 127.0.0.1 that answers every request of a connection after ``delay`` seconds."""
    accepted = []

    async def serve(stream):
        accepted.append(stream)
        async with stream:
            buffer = b""
            try:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        buffer += await stream.receive()
                    _, buffer = buffer.split(b"\r\n\r\n", 1)
                    await anyio.sleep(delay)
                    await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        yield f"http://127.0.0.1:{port}/", accepted
        group.cancel_scope.cancel()


def transport_with(pool_type, limits: httpx.Limits) -> GuardedTransport:
    transport = GuardedTransport(GuardedNetworkBackend(allow_private=True), limits=limits)
    transport._pool = pool_type(
        max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry, network_backend=GuardedNetworkBackend(allow_private=True),
    )
    return transport


async def burst(client: httpx.AsyncClient, url: str, requests: int, at_once: int) -> None:
    slots = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with slots:
            assert (await client.get(url)).text == "ok"

    await asyncio.gather(*(one() for _ in range(requests)))


def test_the_gateway_uses_the_linear_pool_on_the_httpcore_it_was_checked_against():
    transport = GuardedTransport(GuardedNetworkBackend(allow_private=True))
    assert type(transport._pool) is pool_class()
    if httpcore.__version__ in VERIFIED:
        assert type(transport._pool) is LinearConnectionPool
    else:  # an httpcore nobody checked the override against keeps its own pool
        assert type(transport._pool) is httpcore.AsyncConnectionPool


@pytest.mark.parametrize("limits", [
    httpx.Limits(max_connections=100, max_keepalive_connections=20),  # the providers' pool
    httpx.Limits(max_connections=6, max_keepalive_connections=2),  # a full pool, surplus idle closed
])
async def test_it_opens_reuses_and_closes_connections_exactly_as_httpcore_does(limits):
    outcomes = {}
    for pool_type in (httpcore.AsyncConnectionPool, LinearConnectionPool):
        async with keep_alive_server() as (url, accepted):
            transport = transport_with(pool_type, limits)
            async with httpx.AsyncClient(transport=transport) as client:
                await burst(client, url, requests=60, at_once=10)
                outcomes[pool_type] = (len(accepted), len(transport._pool.connections))
    assert outcomes[LinearConnectionPool] == outcomes[httpcore.AsyncConnectionPool]
    opened, kept = outcomes[LinearConnectionPool]
    assert opened <= 60 and kept <= limits.max_connections


async def test_a_pass_over_idle_connections_asks_each_once_not_once_per_other():
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with keep_alive_server() as (url, _):
        asked = {}
        for pool_type in (httpcore.AsyncConnectionPool, LinearConnectionPool):
            transport = transport_with(pool_type, limits)
            async with httpx.AsyncClient(transport=transport) as client:
                await burst(client, url, requests=16, at_once=16)
                pool = transport._pool
                connections = pool.connections
                assert len(connections) == 16 and all(c.is_idle() for c in connections)
                calls = [0]
                for connection in connections:
                    original = connection.is_idle

                    def counted(original=original):
                        calls[0] += 1
                        return original()

                    connection.is_idle = counted
                assert pool._assign_requests_to_connections() == []  # nothing to close, nothing queued
                asked[pool_type] = calls[0]
    assert asked[httpcore.AsyncConnectionPool] == 16 + 16 * 16  # httpcore: each idle one counts all
    assert asked[LinearConnectionPool] == 16


@pytest.fixture
def socket_checks(monkeypatch) -> list[int]:
    """How many times a pooled connection's socket was asked whether the server closed it."""
    from gateway.outbound import idle_check

    asked = [0]
    original = idle_check.socket_readable

    def counted(sock):
        asked[0] += 1
        return original(sock)

    monkeypatch.setattr(idle_check, "socket_readable", counted)
    return asked


async def test_only_the_connection_a_request_reuses_has_its_socket_asked(socket_checks):
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with keep_alive_server() as (url, accepted):
        transport = transport_with(LinearConnectionPool, limits)
        async with httpx.AsyncClient(transport=transport) as client:
            await burst(client, url, requests=16, at_once=16)
            pool = transport._pool
            assert len(pool.connections) == 16 and all(c.is_idle() for c in pool.connections)
            socket_checks[0] = 0
            assert pool._assign_requests_to_connections() == []  # a pass over 16 idle connections
            assert socket_checks[0] == 0  # httpcore: 16
            assert (await client.get(url)).text == "ok"
            # the request's two passes, its connection's socket asked once before it was reused (httpcore: 2 × 16)
            assert socket_checks[0] == 1
            assert len(accepted) == 16


@asynccontextmanager
async def closing_server():
    """HTTP/1.1 on 127.0.0.1 that answers one request per connection, keep-alive, then closes it."""
    accepted, closed = [], asyncio.Event()

    async def serve(stream):
        accepted.append(stream)
        async with stream:
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        closed.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        yield f"http://127.0.0.1:{port}/", accepted, closed
        group.cancel_scope.cancel()


@pytest.mark.parametrize("pool_type", [httpcore.AsyncConnectionPool, LinearConnectionPool])
async def test_a_connection_the_server_closed_while_idle_is_never_reused(pool_type):
    async with closing_server() as (url, accepted, closed):
        transport = transport_with(pool_type, httpx.Limits(max_connections=100, max_keepalive_connections=20))
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get(url)).text == "ok"
            await closed.wait()  # the server closed the kept-alive connection
            if pool_type is LinearConnectionPool:  # no pass asked its socket: still pooled, as if alive
                assert len(transport._pool.connections) == 1
            while not all(c.has_expired() for c in transport._pool.connections):  # its socket shows the close
                await asyncio.sleep(0)
            assert (await client.get(url)).text == "ok"  # on a new connection, not the dead one
            assert len(accepted) == 2
