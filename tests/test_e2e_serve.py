"""The real server, started as `socialgate serve --demo` would be, queried over real HTTP."""

import json
import re
import subprocess
import sys

import httpx
import pytest

from tests.servers import serve

pytestmark = pytest.mark.e2e


def _demo_key(output: str) -> str:
    match = re.search(r"sg_live_[A-Za-z0-9]{44}", output)
    assert match, output
    return match.group(0)


def _first_query(output: str) -> str:
    """The query the demo banner tells the user to paste, taken from its curl line."""
    body = re.search(r"-d '(\{.*\})'", output)
    assert body, output
    return json.loads(body.group(1))["query"]


def test_demo_serves_and_answers_the_printed_query(tmp_path):
    with serve(tmp_path, "--demo") as server:
        output = server.stdout()
        key = _demo_key(output)
        assert f"{server.base_url}/graphql" in output
        assert httpx.get(server.base_url + "/healthz").status_code == 200
        assert httpx.get(server.base_url + "/readyz").json()["database"] == "ok"
        response = httpx.post(
            server.base_url + "/graphql",
            json={"query": _first_query(output)},
            headers={"Authorization": f"Bearer {key}"},
        )
        viewer = response.json()["data"]["viewer"]
        assert viewer["organization"]["name"] == "Demo organization"
        assert viewer["scopes"] == ["*"]
        assert response.headers["x-request-id"].startswith("req_")
        unauthenticated = httpx.post(server.base_url + "/graphql", json={"query": "{ viewer { scopes } }"})
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # Every log line is JSON, and the request's lines carry its id.
        lines = [json.loads(line) for line in server.stderr().splitlines() if line.strip()]
        assert any(line.get("request_id") == response.headers["x-request-id"] for line in lines)

    # A second --demo start reuses the demo: no new secret printed, a hint to mint one instead.
    (tmp_path / "serve.out").unlink()
    with serve(tmp_path, "--demo") as again:
        output = again.stdout()
        assert "sg_live_" not in output
        assert "socialgate keys create --org org_" in output
        still = httpx.post(
            again.base_url + "/graphql",
            json={"query": "{ viewer { apiKeyId } }"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert still.json()["data"]["viewer"]["apiKeyId"].startswith("key_")


def test_bad_setting_stops_serve_with_a_clear_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "SOCIALGATE_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SOCIALGATE_PORT: expected an integer from 1 to 65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_taken_before_the_server_binds_it_is_retried_on_another(tmp_path, monkeypatch):
    """The port is chosen by probing, and another process may bind it first: serve tries again."""
    import socket

    from tests import servers

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = servers.free_port
        monkeypatch.setattr(servers, "free_port", lambda: next(ports, None) or real_free_port())
        with servers.serve(tmp_path) as server:
            assert not server.base_url.endswith(f":{taken}")
            assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
