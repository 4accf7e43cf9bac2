"""Shared fixtures: an isolated settings/runtime per test, an in-process HTTP client, keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from strawberry import Schema

import gateway.app
from gateway.app import create_app
from gateway.auth.keys import mint_key
from gateway.orgs.organizations import create_organization
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from schema import build_schema
from tests.lifespan import lifespan_of


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own SOCIALGATE_* variables must not leak into the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("SOCIALGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path))


def settings_with_oauth_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clients: dict[str, tuple[str, str]]) -> Settings:
    """The test settings with these providers' OAuth clients (id → (client id, secret)) configured."""
    from gateway.settings import oauth_client_variables

    for provider_id, values in clients.items():
        for variable, value in zip(oauth_client_variables(provider_id), values, strict=True):
            monkeypatch.setenv(variable, value)
    return load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path))


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()


@dataclass
class ApiClient:
    """An in-process client bound to the app, with a helper for GraphQL calls."""

    http: httpx.AsyncClient
    runtime: Runtime

    async def graphql(
        self, query: str, variables: dict | None = None, *, key: str | None = None, headers: dict | None = None
    ) -> dict:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def shared_schema() -> Schema:
    """One GraphQL schema for the whole run: building it is most of what building the app costs.

    Sharing it keeps tests apart: a schema holds types and extension *factories* only (each
    operation gets its own extension instances); every piece of state — database, bus, rate
    limits, caches of the runtime — belongs to the per-test ``Runtime`` the app is given.
    """
    return build_schema()


@pytest.fixture
async def api(settings: Settings, shared_schema: Schema, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiClient]:
    monkeypatch.setattr(gateway.app, "build_schema", lambda: shared_schema)
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield ApiClient(http=http, runtime=app.state.runtime)


@dataclass
class OrgWithKey:
    organization_id: str
    api_key_id: str
    secret: str


async def make_org_with_key(runtime: Runtime, name: str = "Acme", scopes: list[str] | None = None) -> OrgWithKey:
    async with runtime.database.write() as session:
        organization = await create_organization(session, name)
        minted = await mint_key(session, organization.id, scopes or ["*"])
    return OrgWithKey(organization.id, minted.key.id, minted.secret)


@pytest.fixture
async def org(api: ApiClient) -> OrgWithKey:
    return await make_org_with_key(api.runtime)


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each call run on an aiosqlite connection's thread, by the name of what it ran: every trip
    there costs the event loop a hand-off (``gateway.storage.sqlite_driver``)."""
    import aiosqlite.core

    seen: list[str] = []
    original = aiosqlite.core.Connection._execute

    async def counting(self: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(function, "__name__", repr(function)))
        return await original(self, function, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counting)
    return seen
