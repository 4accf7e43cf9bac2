"""The idle-connection check of the provider pool: right answers, from the raw socket."""

import socket

import anyio
import httpcore
import httpx
import pytest

from gateway.outbound.idle_check import IdleCheckedStream, socket_readable
from gateway.outbound.url_guard import GuardedNetworkBackend, GuardedTransport


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


async def test_an_idle_connection_is_unreadable_until_the_peer_closes_it(listener):
    stream = IdleCheckedStream(await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", listener.getsockname()[1]))
    peer, _ = listener.accept()
    assert stream.get_extra_info("is_readable") is False
    peer.close()
    with anyio.fail_after(5):
        while not stream.get_extra_info("is_readable"):
            await anyio.sleep(0.01)
    assert await stream.read(10) == b""
    await stream.aclose()


async def test_other_questions_and_the_bytes_pass_through(listener):
    inner = await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", listener.getsockname()[1])
    stream = IdleCheckedStream(inner)
    peer, _ = listener.accept()
    assert stream.get_extra_info("server_addr") == inner.get_extra_info("server_addr")
    await stream.write(b"ping")
    assert peer.recv(4) == b"ping"
    peer.sendall(b"pong")
    assert await stream.read(4) == b"pong"
    # Unasked data also makes an idle connection unusable: the pool must see it as readable.
    peer.sendall(b"!")
    with anyio.fail_after(5):
        while not stream.get_extra_info("is_readable"):
            await anyio.sleep(0.01)
    peer.close()
    await stream.aclose()


def test_a_closed_socket_counts_as_readable():
    sock = socket.socket()
    sock.close()
    assert socket_readable(sock) is True
    assert socket_readable(None) is True


async def test_the_guarded_pool_reuses_a_connection_and_replaces_one_the_server_closed():
    """End to end through httpx: keep-alive reuse, then a fresh connection after the server hung up."""
    accepted = []
    first_closed = anyio.Event()

    async def serve(stream):
        accepted.append(stream)
        await _answer_and_close(stream)
        first_closed.set()

    async def _answer_and_close(stream):
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive()
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            if len(accepted) == 1:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += await stream.receive()
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            # returning closes the connection: the pool must notice before reusing it

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        transport = GuardedTransport(GuardedNetworkBackend(allow_private=True))
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(2):
                assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
            assert len(accepted) == 1  # kept alive and reused
            with anyio.fail_after(10):
                await first_closed.wait()  # the server has closed the kept-alive connection
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
            assert len(accepted) == 2
        group.cancel_scope.cancel()
