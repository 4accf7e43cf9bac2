"""SOCIALGATE_CORS_ORIGINS opens the API to pages on those origins, over HTTP and WebSocket alike
(a browser app queries over fetch and subscribes over a socket), and to no other origin."""

import httpx
import pytest
import websockets

from tests.servers import RunningServer, serve

pytestmark = pytest.mark.e2e

APP_ORIGIN = "http://127.0.0.1:5173"
OTHER_ORIGIN = "https://elsewhere.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("cors"), env={"SOCIALGATE_CORS_ORIGINS": APP_ORIGIN}) as server:
        yield server


async def handshake(server: RunningServer, origin: str) -> str | None:
    """The subprotocol the server accepted a socket from a page on ``origin`` with."""
    url = server.base_url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], origin=origin) as socket:
        return socket.subprotocol


def test_an_allowed_origin_may_call_over_http(server: RunningServer):
    preflight = httpx.options(
        server.base_url + "/graphql",
        headers={"origin": APP_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    refused = httpx.options(server.base_url + "/graphql", headers={"origin": OTHER_ORIGIN, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in refused.headers


async def test_an_allowed_origin_may_subscribe_over_a_websocket(server: RunningServer):
    assert await handshake(server, APP_ORIGIN) == "graphql-transport-ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await handshake(server, OTHER_ORIGIN)
    assert refused.value.response.status_code == 403
