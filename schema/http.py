"""Strawberry's ASGI view, with our context: the runtime, the request id and the caller.

Requests are read strictly (``schema.http_request``) and every refusal before GraphQL runs —
a malformed body, an unsupported content type, an upload without a valid key — is answered as
JSON with ``extensions.code`` and ``requestId`` rather than Strawberry's plain-text line.

Responses follow the GraphQL over HTTP specification's two media types, picked from the request's
``Accept`` (``gateway.core.http_errors.response_media_type``). In ``application/json`` every
GraphQL result is a 200 with a ``data`` entry, as before. In ``application/graphql-response+json``
a request error — the document does not parse or validate, a variable cannot be coerced, the
query costs too much — is a 4xx (400; 401 for introspection kept private, 429 when rate
limited) without ``data``, and a result of execution, errors in fields included, is a 200 with
``data``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import orjson
import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.auth import ACT_AS_HEADER, Refusal, act_as, authenticate, parse_bearer, touch_last_used
from gateway.core import (
    APPLICATION_JSON,
    BAD_REQUEST,
    CODE_BY_STATUS,
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    BackgroundTasks,
    BadInput,
    RequestRefused,
    ServiceError,
    Unauthenticated,
    current_request_id,
    error_response,
    new_request_id,
    response_media_type,
)
from gateway.observability import observe_graphql
from gateway.runtime import Runtime
from gateway.web import frame_writer
from schema.context import Context
from schema.errors import shape_error
from schema.fanout import Delivery, Envelope, FanoutHub, current_delivery, legacy_ws_frame, transport_ws_frame
from schema.http_request import decode_json, place_files, request_object
from schema.introspection import introspection_is_private
from schema.persisted_queries import PersistedQueries

log = logging.getLogger("socialgate.websocket")

GRAPHIQL_PRIVATE_MESSAGE = "This server serves GraphiQL only to callers with a valid API key."
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
        write_frame=frame_writer(handler.websocket.ws.scope),
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


def encode_body(data: object) -> bytes:
    """An HTTP response's JSON by orjson, about fourteen times json's speed on a page; what it refuses
    (an integer beyond 64 bits from a JSON scalar, a key that is not a string) json writes. A
    WebSocket message stays with strawberry's ``encode_json``: it must go out as a text frame."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


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
        self.persisted_queries = PersistedQueries()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        media_type = response_media_type(Headers(scope=scope).get("accept"))
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except RequestRefused as refused:
            response = refused.response(media_type)
        except (HTTPException, StarletteHTTPException) as error:  # Strawberry's and Starlette's own refusals
            status, message = error.status_code, str(getattr(error, "reason", None) or error.detail)
            response = error_response(status, CODE_BY_STATUS.get(status, BAD_REQUEST), message, media_type=media_type)
        await response(scope, receive, send)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """The headers and status resolvers may set; it also carries the media type the response
        is sent in, which ``create_response`` (given no request) needs."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """The GraphQL response in its negotiated media type. Only a request error in
        application/graphql-response+json lacks ``data`` (``process_result``): its status is a 4xx."""
        media_type = sub_response.media_type or APPLICATION_JSON
        response = Response(encode_body(response_data), status_code=200, media_type=CONTENT_TYPES[media_type])
        response.headers.raw.extend(sub_response.headers.raw)
        response.headers.add_vary_header("Accept")
        if sub_response.background:
            response.background = sub_response.background
        if isinstance(response_data, dict) and "data" not in response_data:
            response.status_code, retry_after = request_error_status(response_data.get("errors") or [])
            if retry_after is not None:
                response.headers["Retry-After"] = retry_after
        elif sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    def parse_json(self, data: str | bytes) -> Any:
        """An HTTP body or query-string part: refused with a message saying what is wrong with it."""
        return decode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket frame, held to the same rules; the protocol handler closes the socket (4400)
        on a JSONDecodeError, where a frame nested too deep used to end the handler with a RecursionError."""
        try:
            return decode_json(data, "The message")
        except RequestRefused as refused:
            raise json.JSONDecodeError(refused.message, data if isinstance(data, str) else "", 0) from None

    def should_render_graphql_ide(self, request: Any) -> bool:
        """GraphiQL for a browser's GET without a query; not for a GET that carries a persisted
        query's hash instead of its document (``schema.persisted_queries``): that is an API call."""
        return super().should_render_graphql_ide(request) and request.query_params.get("extensions") is None

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, unless introspection is private and the page was asked for without a valid key
        (a browser's navigation sends none): then 401 (403 for a key switched off)."""
        if not self.runtime.settings.public_introspection:
            context = await self.get_context(request, None)
            refusal = context.principal_or_error
            if introspection_is_private(context) and isinstance(refusal, ServiceError):
                status = 401 if isinstance(refusal, Unauthenticated) else 403
                raise RequestRefused(GRAPHIQL_PRIVATE_MESSAGE, status=status, code=refusal.code)
        return await super().render_graphql_ide(request)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """One GraphQL request from a GET's query string, a JSON body or a multipart upload."""
        raw_type = request.content_type or ""
        # The commonest header, as parse_content_type would read it (which builds an email message).
        content_type = raw_type if raw_type == "application/json" else parse_content_type(raw_type)[0]
        transport = self._get_stream_transport_from_headers(request.headers)
        if request.method == "GET":
            data = self.parse_query_params(request.query_params)
        elif content_type == "application/json" or content_type.endswith("+json"):
            data = request_object(decode_json(await request.get_body()))
        elif content_type == "multipart/form-data":
            data = await self.parse_multipart(request)
        else:
            raise RequestRefused(f"Unsupported content type {content_type[:80]!r}: send application/json, or multipart/form-data for uploads.")
        for name, kind in (("query", str), ("operationName", str), ("variables", dict), ("extensions", dict)):
            if data.get(name) is not None and not isinstance(data[name], kind):
                raise RequestRefused(f"The request's `{name}` must be {'a string' if kind is str else 'an object'} or null.")
        return GraphQLRequestData(
            query=self.persisted_queries.resolve(data.get("query"), data.get("extensions")),
            variables=data.get("variables"),
            operation_name=data.get("operationName"),
            extensions=data.get("extensions"),
            protocol=transport.protocol if transport else "http",
        )

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        """GraphQL multipart request spec: ``operations``, ``map`` (optional: no files), the file parts."""
        try:
            form = await request.get_form_data()
        except (StarletteHTTPException, ValueError) as error:  # Starlette's parser: too many files or fields, a broken part
            raise RequestRefused(f"The multipart body could not be read: {getattr(error, 'detail', error)}") from None
        operations, files_map = form.form.get("operations"), form.form.get("map", "{}")
        if not isinstance(operations, (str, bytes)) or not isinstance(files_map, (str, bytes)):
            raise RequestRefused("A multipart request needs an `operations` part (and a `map` for its files) as text fields.")
        return place_files(decode_json(operations, "The `operations` part"), decode_json(files_map, "The `map` part"), form.files)

    async def execute_single(  # noqa: PLR0917 — Strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """A query or mutation. A subscription over a plain request (not SSE) has no stream to
        deliver on, and executing it as a query ended in a TypeError reported as INTERNAL."""
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        started, outcome = time.perf_counter(), "refused"  # refused: the request never reached execution
        try:
            result = await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
            outcome = "ok" if not result.errors else str((result.errors[0].extensions or {}).get("code", "error"))
            return result
        except InvalidOperationTypeError as error:
            if error.operation_type is not OperationType.SUBSCRIPTION:
                raise HTTPException(405, error.as_http_error_reason(request_adapter.method)) from None
            return _subscription_refused(request_data.query or "", request_data.operation_name)
        except CannotGetOperationTypeError as error:
            raise RequestRefused(error.as_http_error_reason()) from None
        except MissingQueryError:
            raise RequestRefused("No GraphQL query found in the request.") from None
        finally:
            observe_graphql(request_data.operation_name, outcome, time.perf_counter() - started)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        request_id = current_request_id.get() or new_request_id()
        principal_or_error: Any
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            principal_or_error = Unauthenticated()
        else:
            principal_or_error = await self._authenticate(token, request.headers.get(ACT_AS_HEADER))
        if isinstance(principal_or_error, ServiceError) and _is_multipart(request):
            # Only uploads come as multipart, and every upload needs a key: refused before a byte
            # of the body is read, rather than after spooling it all to disk.
            status = 401 if isinstance(principal_or_error, Unauthenticated) else 403
            raise RequestRefused(principal_or_error.message, status=status, code=principal_or_error.code, unread_body=True)
        return Context(
            runtime=self.runtime,
            request=request,
            response=response,
            request_id=request_id,
            principal_or_error=principal_or_error,
        )

    async def _authenticate(self, token: str, acting_in: str | None) -> Any:
        try:
            async with self.runtime.database.connect() as connection:  # one Core statement: no session
                principal = await authenticate(connection, token, kill_switch=self.runtime.settings.kill_switch)
            if acting_in:
                async with self.runtime.database.read() as session:
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
        error leaving over HTTP carries its code and request id. In application/graphql-response+json
        a request error has no ``data`` entry."""
        if result.errors:
            result.errors = [
                error if (error.extensions or {}).get("code") else shape_error(error) for error in result.errors
            ]
        response = process_result(result)
        if is_request_error(result) and response_media_type(request.headers.get("accept")) == GRAPHQL_RESPONSE_JSON:
            del response["data"]
        return response


# A request error's status in application/graphql-response+json, by the code of its error; any
# other code (a document that does not parse or validate, a variable that cannot be coerced, a
# page size or a cost refused before execution) is the client's mistake: 400.
REQUEST_ERROR_STATUS = {"RATE_LIMITED": 429, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "INTERNAL": 500}


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the result is a request error: execution never began, so there is no data.

    Parsing, validation and variable coercion fail before any field resolves, and so do our own
    refusals before execution (cost, rate limit, a subscription over plain HTTP): none of their
    errors has a ``path``. An error in a field always has one, even when it nulls all the data.
    """
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors)


def request_error_status(errors: list[dict[str, Any]]) -> tuple[int, str | None]:
    """The status of a request error, the worst of its errors', and a Retry-After for a 429."""
    statuses = [REQUEST_ERROR_STATUS.get((error.get("extensions") or {}).get("code"), 400) for error in errors]
    status = max(statuses, default=400)
    retry_after = None
    if status == 429:
        waits = [(error.get("extensions") or {}).get("retryAfter") for error in errors]
        retry_after = str(max(1, math.ceil(max((w for w in waits if isinstance(w, (int, float))), default=1))))
    return status, retry_after


def _is_multipart(request: Request | WebSocket) -> bool:
    return request.scope["type"] == "http" and request.headers.get("content-type", "").lower().startswith("multipart/")


def _subscription_refused(query: str, operation_name: str | None) -> ExecutionResult:
    """BAD_USER_INPUT naming the subscription's fields (the document parsed, it was just executed)."""
    operations = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next((o for o in operations if o.name and o.name.value == operation_name), operations[0])
    fields = ", ".join(s.name.value for s in chosen.selection_set.selections if isinstance(s, FieldNode)) or "subscription"
    refusal = BadInput(
        f"`{fields}` is a subscription: open a WebSocket on /graphql (graphql-transport-ws) or send"
        " `Accept: text/event-stream` for Server-Sent Events; a plain request cannot carry its events.",
        fields,
    )
    return ExecutionResult(data=None, errors=[shape_error(GraphQLError(refusal.message, original_error=refusal))])
