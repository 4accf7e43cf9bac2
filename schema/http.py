"""Strawberry's ASGI view, with our context: the runtime, the request id and the caller."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from gateway.access import ACT_AS_HEADER, act_as
from gateway.background import BackgroundTasks
from gateway.errors import ServiceError, Unauthenticated
from gateway.keys import Refusal, authenticate, parse_bearer, touch_last_used
from gateway.request_context import current_request_id, new_request_id
from gateway.runtime import Runtime
from schema.context import Context
from schema.errors import shape_error
from schema.fanout import Delivery, Envelope, FanoutHub, current_delivery, legacy_ws_frame, transport_ws_frame

log = logging.getLogger("socialgate.websocket")

# The close code of a socket whose key is refused, at connection_init or later (graphql-ws's Forbidden).
FORBIDDEN_CLOSE = 4403
MAX_CLOSE_REASON_BYTES = 123  # what a WebSocket close frame has room for


def close_reason(refusal: Refusal) -> str:
    """``CODE: message``, cut to fit a close frame: the code first, so a client can act on it."""
    reason = f"{refusal.code}: {refusal.message}"
    return reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


async def close_refused(websocket: WebSocket, refusal: Refusal) -> None:
    """Close a socket whose key no longer stands; one its client closed meanwhile needs nothing."""
    try:
        await websocket.close(code=FORBIDDEN_CLOSE, reason=close_reason(refusal))
    except RuntimeError:  # starlette: the socket was already closed
        pass


class KeyWatchedConnection:
    """Both protocols' handlers: the key watch of the connection ends with the connection."""

    context: Context

    async def handle(self) -> None:
        try:
            await super().handle()  # type: ignore[misc]
        finally:
            if self.context.key_watch is not None:
                self.context.key_watch.release()


def _delivery(handler: Any, envelope: Envelope, operation_id: str, query: str, variables: Any, operation_name: str | None) -> Delivery:
    """What a handler's operation task tells a shareable subscription about itself (``schema.fanout``)."""
    return Delivery(
        hub=handler.view.fanout,
        operation_id=operation_id,
        query=query,
        variables=variables if isinstance(variables, dict) else None,
        operation_name=operation_name,
        context=handler.context,
        root_value=handler.root_value,
        envelope=envelope,
        send_text=handler.websocket.ws.send_text,
    )


class TransportWSHandler(KeyWatchedConnection, BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with the operation's delivery known to its resolvers."""

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        delivery = _delivery(self, transport_ws_frame, operation.id, operation.query, operation.variables, operation.operation_name)
        current_delivery.set(delivery)  # this operation's own task: no other operation sees it
        await super().run_operation(operation)


class LegacyWSHandler(KeyWatchedConnection, BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws protocol, with the operation's delivery known to its resolvers."""

    async def handle_async_results(self, operation_id: str, query: str, operation_name: str | None, variables: Any) -> None:
        current_delivery.set(_delivery(self, legacy_ws_frame, operation_id, query, variables, operation_name))
        await super().handle_async_results(operation_id, query, operation_name, variables)


class GraphQLView(GraphQL):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: strawberry.Schema, runtime: Runtime) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            multipart_uploads_enabled=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
            keep_alive=True,
            keep_alive_interval=15,
            # Browsers apply no CORS to WebSockets; the view checks their Origin itself, so the
            # origins allowed to call the API over HTTP may subscribe too.
            allowed_origins=runtime.settings.cors_origins,
        )
        self.runtime = runtime
        self.fanout = FanoutHub(schema, backlog_limit=runtime.events.queue_size)
        self.closing = BackgroundTasks("closing sockets whose key was refused", log)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        request_id = current_request_id.get() or new_request_id()
        principal_or_error: Any
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            principal_or_error = Unauthenticated()
        else:
            principal_or_error = await self._authenticate(token, request.headers.get(ACT_AS_HEADER))
        return Context(
            runtime=self.runtime,
            request=request,
            response=response,
            request_id=request_id,
            principal_or_error=principal_or_error,
        )

    async def _authenticate(self, token: str, acting_in: str | None) -> Any:
        try:
            async with self.runtime.database.read() as session:
                principal = await authenticate(session, token, kill_switch=self.runtime.settings.kill_switch)
                if acting_in:
                    principal = await act_as(session, principal, acting_in.strip())
        except ServiceError as error:
            return error
        if principal.needs_touch():
            async with self.runtime.database.write() as session:
                await touch_last_used(session, principal.api_key_id)
        return principal

    async def on_ws_connect(self, context: Context) -> Any:
        """WebSocket auth comes in connection_init's payload: {"Authorization": "Bearer sg_live_…"}.

        A missing or bad key closes the socket (4403) before any subscription starts.
        """
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        token = parse_bearer(header if isinstance(header, str) else None)
        if token is not None:
            acting_in = params.get("X-Socialgate-Org") or params.get("x-socialgate-org")
            context.principal_or_error = await self._authenticate(token, acting_in if isinstance(acting_in, str) else None)
        if isinstance(context.principal_or_error, ServiceError):
            raise ConnectionRejectionError({"code": context.principal_or_error.code, "message": context.principal_or_error.message})
        if context.key_watch is None:  # the key is re-checked while the socket is open
            websocket = context.request

            def refused(refusal: Refusal) -> None:
                self.closing.spawn(close_refused(websocket, refusal), "close a socket")

            context.key_watch = self.runtime.key_watch.watch(context.principal, refused)
        return None

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Shape any error no extension saw (a parse error cut short by a limit, say), so that every
        error leaving over HTTP carries its code and request id."""
        if result.errors:
            result.errors = [
                error if (error.extensions or {}).get("code") else shape_error(error) for error in result.errors
            ]
        return process_result(result)
