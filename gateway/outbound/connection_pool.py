"""httpcore's connection pool, without the quadratic count in its bookkeeping.

Whenever a request joins or leaves httpcore 1.0's pool, the pool walks its connections, and for
each idle one it counts the connections by building a list of all of them: n² steps per pass,
two passes per request. With the sixteen warm connections of one busy platform that was a fifth
of the gateway's CPU per provider call; with a hundred (the pool's ceiling) it would be ten
thousand calls per pass. The fix is upstream but not released (encode/httpcore#1035, open;
merged in pydantic's httpx2 fork as #974), so this pool overrides that one method: the same
code, with the count taken as ``len()`` of the list it was counting. The value is the same, so
the pool's behaviour is exactly httpcore's, keep-alive quirk included (it compares every
connection, not only idle ones, with ``max_keepalive_connections``).

It also asks each idle connection's socket whether the server closed it (a ``poll``, by
``idle_check``) only when a request is about to reuse that connection, not on every pass over the
pool: httpcore asks every idle connection twice per request, which with sixteen warm connections
was sixteen system calls per provider call to learn what only the connection about to be used
needs to know. A pass still closes connections whose keep-alive ran out (a clock check) and the
surplus idle ones; one the server closed is found and closed when it would have been reused,
and the request goes to the next one. So no request is ever handed a connection its server
closed while it sat idle, as with httpcore; a dead connection may sit in the pool until then.

The override leans on httpcore's internals, so it is used only with the httpcore releases it
was checked against (``VERIFIED``); any other release gets httpcore's own pool unchanged.

The method's body is httpcore's: Copyright © 2020, Encode OSS Ltd, under the BSD 3-Clause
licence (https://github.com/encode/httpcore/blob/master/LICENSE.md).
"""

from __future__ import annotations

import time

import httpcore
from httpcore._async.interfaces import AsyncConnectionInterface

# httpcore releases whose AsyncConnectionPool._assign_requests_to_connections this mirrors.
VERIFIED = ("1.0.5", "1.0.6", "1.0.7", "1.0.8", "1.0.9")


class LinearConnectionPool(httpcore.AsyncConnectionPool):
    """``httpcore.AsyncConnectionPool`` whose per-request bookkeeping is linear in its connections."""

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        # httpcore 1.0.9's method, but for the marked differences.
        closing_connections = []

        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif _expired_by_the_clock(connection):  # httpcore: connection.has_expired(), which polls idle sockets
                self._connections.remove(connection)
                closing_connections.append(connection)
            elif (
                connection.is_idle()
                # httpcore: len([connection.is_idle() for connection in self._connections])
                and len(self._connections) > self._max_keepalive_connections
            ):
                self._connections.remove(connection)
                closing_connections.append(connection)

        queued_requests = [request for request in self._requests if request.is_queued()]
        for pool_request in queued_requests:
            origin = pool_request.request.url.origin
            # httpcore: the list of every available connection, and of every idle one, per request
            available = self._first_available(origin, closing_connections)
            if available is not None:
                pool_request.assign_to_connection(available)
            elif len(self._connections) < self._max_connections:
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
            elif (idle := next((c for c in self._connections if c.is_idle()), None)) is not None:
                self._connections.remove(idle)
                closing_connections.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)

        return closing_connections

    def _first_available(self, origin: httpcore.Origin, closing: list[AsyncConnectionInterface]) -> AsyncConnectionInterface | None:
        """The first connection that can take a request to ``origin`` now; one the server closed while
        it sat idle (its socket readable: ``has_expired``) is moved to ``closing`` and passed over."""
        for connection in list(self._connections):
            if connection.can_handle_request(origin) and connection.is_available():
                if connection.is_idle() and connection.has_expired():
                    self._connections.remove(connection)
                    closing.append(connection)
                    continue
                return connection
        return None


def _expired_by_the_clock(connection: AsyncConnectionInterface) -> bool:
    """``has_expired`` without asking the socket: the keep-alive ran out, or the connect failed."""
    inner = getattr(connection, "_connection", None)
    if inner is None:  # not connected (yet): httpcore asks only whether the connect failed
        return connection.has_expired()
    expire_at = getattr(inner, "_expire_at", None)
    return expire_at is not None and time.monotonic() > expire_at


def pool_class() -> type[httpcore.AsyncConnectionPool]:
    """The linear pool on an httpcore release it was checked against, httpcore's own otherwise."""
    return LinearConnectionPool if httpcore.__version__ in VERIFIED else httpcore.AsyncConnectionPool
