"""A cheap answer to the question httpcore asks of every idle pooled connection, every request.

Before it assigns a request, httpcore's pool asks each idle connection whether its socket became
readable (the server closed it, or sent something unasked). Through the anyio backend that
question builds anyio's whole table of socket attributes — ``getpeername`` and friends, two
system calls and a dict — per idle connection per request: with sixteen warm connections to one
platform it was the largest single cost of a provider call. The raw socket, looked up once when
the connection opens, answers the same question with one ``poll``.
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import Any

import httpcore


def socket_readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once: data, or the end of a connection the peer closed."""
    if sock is None or sock.fileno() < 0:
        return True  # gone: as good as closed, which is what the pool wants to know
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class IdleCheckedStream(httpcore.AsyncNetworkStream):
    """A network stream that answers ``is_readable`` from its raw socket; everything else passes through."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return IdleCheckedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return socket_readable(self._socket)
        return self._inner.get_extra_info(info)
