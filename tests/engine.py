"""Helpers for publishing-engine tests: an app without its own scheduler, posts ready to publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.engine.scheduler import Scheduler
from gateway.settings import load_settings
from tests.conftest import ApiClient, make_org_with_key
from tests.lifespan import lifespan_of

CREATE_POST = """mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } userErrors { code message } } }"""
CONNECT = """mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } userErrors { code } } }"""
PUBLISH = """mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id status } userErrors { field code message } } }"""


async def quiet_background(runtime) -> None:
    """Stop the app's background loops, so only the requests' own statements reach the engines."""
    for loop in ("scheduler", "webhook_dispatcher", "metrics"):
        if getattr(runtime, loop, None) is not None:
            await getattr(runtime, loop).stop()
            setattr(runtime, loop, None)
    await runtime.relay.stop()


@asynccontextmanager
async def engine_app(tmp_path: Path, **overrides) -> AsyncIterator[ApiClient]:
    """The app with the scheduler left to the test, and retries fast enough to watch."""
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/engine.db",
        data_dir=str(tmp_path),
        run_scheduler=False,
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
        **overrides,
    )
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            yield ApiClient(http=http, runtime=app.state.runtime)


def scheduler_for(api: ApiClient, **kwargs) -> Scheduler:
    scheduler = Scheduler(api.runtime, **kwargs)
    scheduler.retry.jitter = lambda: 1.0
    return scheduler


async def sandbox_account(api: ApiClient, key: str, handle: str = "me", **credentials: str) -> str:
    body = await api.graphql(CONNECT, {"c": {"handle": handle, **credentials}}, key=key)
    return body["data"]["connectAccount"]["account"]["id"]


async def new_post(api: ApiClient, key: str, account_ids: list[str], text: str = "Hello from the engine", **extra) -> str:
    body = await api.graphql(
        CREATE_POST, {"input": {"text": text, "targets": [{"accountId": a} for a in account_ids], **extra}}, key=key
    )
    assert body["data"]["createPost"]["userErrors"] == [], body
    return body["data"]["createPost"]["post"]["id"]


async def publish(api: ApiClient, key: str, post_id: str) -> dict:
    body = await api.graphql(PUBLISH, {"id": post_id}, key=key)
    return body["data"]["publishPost"]


async def setup_org(api: ApiClient):
    return await make_org_with_key(api.runtime)
