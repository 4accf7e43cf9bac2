"""Driving the OAuth connect flow in tests: allow a redirect URI, start, consent like a browser.

Test modules import the fixtures ``settings`` (with the stand-in's OAuth client configured and
its certificate authority trusted), ``platform`` (the stand-in served over https on loopback)
and ``standin`` (its provider, installed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.settings import Settings, load_settings
from tests.oauth_platform import CLIENT_ENV, PROVIDER_ID, AuthorizationServer, authorization_app, install, serving, standin_provider
from tests.tls import TlsFiles, make_certificates

APP_URI = "https://app.example.com/connected"

START = """mutation($input: StartConnectionInput!) {
  startConnection(input: $input) {
    authorizeUrl
    connection { id provider status errorCode expiresAt redirectUri account { id } }
    userErrors { field code message }
  }
}"""
ALLOW = """mutation($uris: [String!]!) {
  setOAuthRedirectUris(input: {redirectUris: $uris}) { redirectUris userErrors { field code message } }
}"""
CONNECTION = """query($id: ID!) {
  connection(id: $id) { id provider status errorCode errorMessage expiresAt completedAt account { id handle provider status } }
}"""


@dataclass
class Platform:
    server: AuthorizationServer
    base_url: str


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def private_urls() -> bool:
    """Whether provider calls may reach private addresses; a test parametrizes it to False."""
    return True


@pytest.fixture
def settings(tmp_path, monkeypatch, tls, platform, private_urls) -> Settings:
    """The stand-in's OAuth client configured, its certificate authority trusted, and provider
    calls allowed to reach loopback, where it runs.

    It asks for ``platform`` so the platform starts before the gateway and stops after it: the
    gateway's pooled connections close first, and the platform's TLS shutdown has no peer to wait for.
    """
    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), allow_private_urls=private_urls)


@pytest.fixture
async def platform(tls) -> AsyncIterator[Platform]:
    server = AuthorizationServer()
    async with serving(authorization_app(server), tls=tls) as base_url:
        yield Platform(server, base_url)


@pytest.fixture
def standin(api, platform):
    provider = standin_provider(platform.base_url)
    install(api.runtime, provider)
    return provider


async def allow(api, key: str, uris: list[str] | None = None) -> dict:
    body = await api.graphql(ALLOW, {"uris": [APP_URI] if uris is None else uris}, key=key)
    return body["data"]["setOAuthRedirectUris"]


async def start(api, key: str, redirect_uri: str = APP_URI, provider: str = PROVIDER_ID) -> dict:
    body = await api.graphql(START, {"input": {"provider": provider, "redirectUri": redirect_uri}}, key=key)
    return body["data"]["startConnection"]


async def poll(api, key: str, connection_id: str) -> dict | None:
    return (await api.graphql(CONNECTION, {"id": connection_id}, key=key))["data"]["connection"]


async def consent(api, authorize_url: str) -> str:
    """The browser at the platform: returns the callback URL the platform sends it back to."""
    async with httpx.AsyncClient() as browser:
        at_platform = await browser.get(authorize_url)
    assert at_platform.status_code == 302, at_platform.text
    location = at_platform.headers["location"]
    assert location.startswith(f"{api.runtime.settings.base_url}/oauth/{PROVIDER_ID}/callback?")
    return location


async def callback(api, location: str) -> httpx.Response:
    """The browser back at socialgate (in-process): the callback answers."""
    return await api.http.get(location.removeprefix(api.runtime.settings.base_url))


async def connect(api, key: str, redirect_uri: str = APP_URI) -> tuple[str, dict[str, list[str]]]:
    """The whole flow; returns the connection id and the query the browser lands with."""
    started = await start(api, key, redirect_uri)
    assert started["userErrors"] == [], started
    answer = await callback(api, await consent(api, started["authorizeUrl"]))
    assert answer.status_code == 303, answer.text
    return started["connection"]["id"], parse_qs(urlsplit(answer.headers["location"]).query)
