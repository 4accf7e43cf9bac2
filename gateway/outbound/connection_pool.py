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

The override leans on httpcore's internals, so it is used only with the httpcore releases it
was checked against (``VERIFIED``); any other release gets httpcore's own pool unchanged.

The method's body is httpcore's: Copyright © 2020, Encode OSS Ltd, under the BSD 3-Clause
licence (https://github.com/encode/httpcore/blob/master/LICENSE.md).
"""

from __future__ import annotations

import httpcore
from httpcore._async.interfaces import AsyncConnectionInterface

# httpcore releases whose AsyncConnectionPool._assign_requests_to_connections this mirrors.
VERIFIED = ("1.0.5", "1.0.6", "1.0.7", "1.0.8", "1.0.9")


class LinearConnectionPool(httpcore.AsyncConnectionPool):
    """``httpcore.AsyncConnectionPool`` whose per-request bookkeeping is linear in its connections."""

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        # Mirrors httpcore 1.0.9's method line for line; only the marked count differs.
        closing_connections = []

        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif connection.has_expired():
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
            available_connections = [
                connection
                for connection in self._connections
                if connection.can_handle_request(origin) and connection.is_available()
            ]
            idle_connections = [connection for connection in self._connections if connection.is_idle()]
            if available_connections:
                connection = available_connections[0]
                pool_request.assign_to_connection(connection)
            elif len(self._connections) < self._max_connections:
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
            elif idle_connections:
                connection = idle_connections[0]
                self._connections.remove(connection)
                closing_connections.append(connection)
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)

        return closing_connections


def pool_class() -> type[httpcore.AsyncConnectionPool]:
    """The linear pool on an httpcore release it was checked against, httpcore's own otherwise."""
    return LinearConnectionPool if httpcore.__version__ in VERIFIED else httpcore.AsyncConnectionPool
