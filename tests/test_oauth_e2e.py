"""End to end: a browser connects an OAuth account through a real authorization server, then publishes.

socialgate runs under real uvicorn on a loopback port (in this process, so the test can install
the stand-in's plugin); the stand-in platform runs under uvicorn over https on another. The
browser is an httpx client following every redirect: socialgate's authorize URL → the platform's
consent → socialgate's callback → the application's page. The post then goes out through
publishPost and the scheduler, and once more after the platform expired the access token, which
the engine renews with the refresh token before retrying.
"""

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import make_org_with_key
from tests.oauth_flow import tls  # noqa: F401 - fixture
from tests.oauth_platform import CLIENT_ENV, AuthorizationServer, authorization_app, install, loopback_socket, serving, standin_provider

pytestmark = pytest.mark.e2e

START = """mutation($uri: String!) {
  startConnection(input: {provider: "standin", redirectUri: $uri}) { authorizeUrl connection { id } userErrors { code message } }
}"""
CREATE_POST = """mutation($text: String!, $account: ID!) {
  createPost(input: {text: $text, targets: [{accountId: $account}]}) { post { id } userErrors { code message } }
}"""
PUBLISH = """mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code message } } }"""
JOB = """query($id: ID!) { job(id: $id) { status post { targets { status platformPostId platformUrl attemptCount } } } }"""


class Client:
    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http, self.key = http, key

    async def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def publish_and_wait(self, text: str, account_id: str) -> dict:
        created = (await self.graphql(CREATE_POST, {"text": text, "account": account_id}))["createPost"]
        assert created["userErrors"] == [], created
        published = (await self.graphql(PUBLISH, {"id": created["post"]["id"]}))["publishPost"]
        assert published["userErrors"] == [], published
        for _ in range(400):
            job = (await self.graphql(JOB, {"id": published["job"]["id"]}))["job"]
            if job["status"] not in ("QUEUED", "RUNNING"):
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"the publish job did not finish: {job}")


async def test_connect_through_a_real_authorization_server_and_publish(tmp_path, monkeypatch, tls):
    for name, value in {**CLIENT_ENV, "SSL_CERT_FILE": str(tls.ca_file)}.items():
        monkeypatch.setenv(name, value)
    platform = AuthorizationServer()
    async with serving(authorization_app(platform), tls=tls) as platform_url:
        sock = loopback_socket()
        settings = load_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), port=sock.getsockname()[1],
            scheduler_poll_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.2, allow_private_urls=True,
        )
        app = create_app(settings)
        install(app.state.runtime, standin_provider(platform_url))
        async with serving(app, sock) as gateway_url:
            assert gateway_url == settings.base_url
            org = await make_org_with_key(app.state.runtime)
            async with httpx.AsyncClient(base_url=gateway_url) as http, httpx.AsyncClient(follow_redirects=True) as browser:
                client = Client(http, org.secret)
                app_page = platform_url + "/app/connected"
                await client.graphql('mutation($u: [String!]!) { setOAuthRedirectUris(input: {redirectUris: $u}) { userErrors { code } } }', {"u": [app_page]})
                started = (await client.graphql(START, {"uri": app_page}))["startConnection"]
                assert started["userErrors"] == []
                connection_id = started["connection"]["id"]

                landed = await browser.get(started["authorizeUrl"])
                assert [r.status_code for r in landed.history] == [302, 303]
                assert str(landed.history[1].url).startswith(f"{gateway_url}/oauth/standin/callback?code=")
                assert landed.status_code == 200 and str(landed.url).startswith(app_page + "?")
                assert landed.json() == {"connection_id": connection_id, "status": "succeeded"}
                [exchange] = platform.token_requests
                assert exchange["grant_type"] == "authorization_code" and "code_verifier" in exchange
                connection = (await client.graphql("query($id: ID!) { connection(id: $id) { status account { id handle } } }", {"id": connection_id}))["connection"]
                assert connection["status"] == "SUCCEEDED" and connection["account"]["handle"] == "alice"
                account_id = connection["account"]["id"]

                job = await client.publish_and_wait("Hello through OAuth", account_id)
                assert job["status"] == "SUCCEEDED", job
                [target] = job["post"]["targets"]
                assert target["status"] == "PUBLISHED" and target["platformUrl"] == "https://standin.example/alice/1"
                assert platform.posts == [{"id": "1", "user": "alice", "text": "Hello through OAuth"}]

                # The platform expires the access token: the engine refreshes it and publishes anyway.
                platform.access_tokens.clear()
                job = await client.publish_and_wait("After a refresh", account_id)
                assert job["status"] == "SUCCEEDED", job
                assert job["post"]["targets"][0]["attemptCount"] == 2
                assert platform.grant_types() == ["authorization_code", "refresh_token"]
                assert platform.posts[-1] == {"id": "2", "user": "alice", "text": "After a refresh"}
                accounts = (await client.graphql("{ accounts { nodes { id status } } }"))["accounts"]["nodes"]
                assert accounts == [{"id": account_id, "status": "ACTIVE"}]
                assert parse_qs(urlsplit(started["authorizeUrl"]).query)["redirect_uri"] == [f"{gateway_url}/oauth/standin/callback"]
