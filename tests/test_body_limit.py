"""Request-body limits on /graphql: a JSON body past max_request_bytes, an upload past the largest media cap."""

import json
import re

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import load_settings
from gateway.web.body_limit import PAYLOAD_TOO_LARGE, BodyLimitMiddleware
from tests.lifespan import lifespan_of
from tests.oauth_platform import serving

QUERY = "{ __typename }"


@pytest.fixture
async def small_limit_client(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", data_dir=str(tmp_path), max_request_bytes=2048)
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            yield http


async def test_a_json_body_within_the_limit_is_served(small_limit_client):
    response = await small_limit_client.post("/graphql", json={"query": QUERY, "variables": {"pad": "x" * 1500}})
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


async def test_a_json_body_over_the_limit_is_refused_with_a_stable_code(small_limit_client):
    response = await small_limit_client.post("/graphql", json={"query": QUERY, "variables": {"pad": "x" * 4000}})
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == PAYLOAD_TOO_LARGE and error["extensions"]["limit"] == 2048
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_a_body_without_a_length_is_cut_off_once_it_passes_the_limit(small_limit_client):
    sent = []

    async def chunks():
        for _ in range(100):  # 100 KiB offered, 2 KiB allowed
            sent.append(1)
            yield b" " * 1024

    response = await small_limit_client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["errors"][0]["extensions"]["code"] == PAYLOAD_TOO_LARGE
    assert len(sent) < 10  # read no further than the limit, not to the end


def test_the_setting_is_validated():
    from gateway.settings import SettingsError

    with pytest.raises(SettingsError, match="max_request_bytes|MAX_REQUEST_BYTES"):
        load_settings(max_request_bytes=10)


async def test_an_upload_has_its_own_larger_limit_and_other_paths_none():
    seen = []

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append((scope["path"], len(body)))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = BodyLimitMiddleware(app, json_limit=100, upload_limit=1000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://testserver") as http:
        upload = await http.post("/graphql", files={"0": ("a.bin", b"x" * 500)}, data={"operations": "{}", "map": "{}"})
        too_big = await http.post("/graphql", files={"0": ("a.bin", b"x" * 5000)}, data={"operations": "{}", "map": "{}"})
        elsewhere = await http.post("/media/upload-elsewhere", content=b"x" * 5000)
    assert upload.status_code == 200 and too_big.status_code == 413 and elsewhere.status_code == 200
    assert [path for path, _ in seen] == ["/graphql", "/media/upload-elsewhere"]


async def test_the_real_server_refuses_an_oversized_declared_body_before_reading_it(settings):
    app = create_app(settings)
    async with serving(app) as base:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                base + "/graphql", content=json.dumps({"query": QUERY, "pad": "x" * (2 * 1024 * 1024)}),
                headers={"content-type": "application/json"},
            )
    assert response.status_code == 413 and response.json()["errors"][0]["extensions"]["code"] == PAYLOAD_TOO_LARGE


# Issue 11.8: a WebSocket frame is held to the JSON body limit.


@pytest.fixture
def small_limit_app(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", data_dir=str(tmp_path), max_request_bytes=2048)
    return create_app(settings)


def _connect(client, socket) -> None:
    """connection_init with a fresh key (made on the app's own event loop), then its ack."""
    from tests.conftest import make_org_with_key

    org = client.portal.call(make_org_with_key, client.app.state.runtime)
    socket.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {org.secret}"}})
    assert socket.receive_json()["type"] == "connection_ack"


def _subscribe(padding: str) -> dict:
    return {"id": "1", "type": "subscribe", "payload": {"query": "subscription { orgEvents { kind } }", "variables": {"pad": padding}}}


def test_a_websocket_frame_over_the_limit_closes_the_socket_with_1009(small_limit_app):
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    with TestClient(small_limit_app) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            _connect(client, socket)
            socket.send_json(_subscribe("x" * 4000))
            socket.send_json({"type": "ping"})  # a socket that took the frame answers pong instead of closing
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
    assert closed.value.code == 1009 and "2048" in closed.value.reason


def test_a_websocket_frame_within_the_limit_is_served(small_limit_app):
    from starlette.testclient import TestClient

    with TestClient(small_limit_app) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            _connect(client, socket)
            socket.send_json({**_subscribe("x" * 1000), "id": "big-but-fine"})
            socket.send_json({"id": "big-but-fine", "type": "complete"})
            socket.send_json({"type": "ping"})
            assert socket.receive_json()["type"] == "pong"  # the socket lives on


def test_a_websocket_frame_nested_too_deep_closes_the_socket_as_invalid_json(small_limit_app):
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    with TestClient(small_limit_app) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_text("[" * 1000 + "]" * 1000)
            socket.send_json({"type": "ping"})
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
    assert closed.value.code == 4400


def test_serve_hands_uvicorn_the_same_frame_limit(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    import gateway.core
    import gateway.outbound
    from gateway.cli import app

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: seen.update(options))
    # No gc.freeze, and no JSON log handler on this process's (captured, soon closed) stderr.
    monkeypatch.setattr(gateway.outbound, "settle_after_startup", lambda: None)
    monkeypatch.setattr(gateway.core, "configure_logging", lambda level: None)
    env = {"SOCIALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", "SOCIALGATE_DATA_DIR": str(tmp_path),
           "SOCIALGATE_MAX_REQUEST_BYTES": "4096"}
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    assert seen["ws_max_size"] == 4096
    # and the WebSocket protocol a subscription fan-out writes its ready-made frames through
    from gateway.web import FrameWritingProtocol

    assert seen["ws"] is FrameWritingProtocol and seen["ws_per_message_deflate"] is False


@pytest.mark.e2e
async def test_the_real_server_closes_a_10_mb_frame(tmp_path):
    import websockets

    from tests.servers import serve

    with serve(tmp_path, "--demo", env={"SOCIALGATE_MAX_REQUEST_BYTES": "65536"}) as server:
        key = re.search(r"sg_live_[A-Za-z0-9]{44}", server.stdout()).group(0)
        url = server.base_url.replace("http", "ws") + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            with pytest.raises((websockets.ConnectionClosed, ConnectionResetError)) as closed:
                await socket.send(json.dumps(_subscribe("x" * 10_000_000)))  # the close may arrive while this is sent
                await socket.send(json.dumps({"type": "ping"}))  # a server that took the frame answers pong
                await socket.recv()
            assert socket.close_code == 1009 and "65536" in socket.close_reason, closed.value
