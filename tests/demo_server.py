"""The few GraphQL calls e2e tests make against a real `serve --demo`: the printed key, an
account, a post published through the API, and the job's stored events to compare with."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.servers import RunningServer

KEY_PATTERN = re.compile(r"sg_live_[A-Za-z0-9]{44}")


def demo_key(output: str) -> str:
    """The all-scopes key `serve --demo` prints on its first start."""
    match = KEY_PATTERN.search(output)
    assert match, output
    return match.group(0)


def graphql(server: RunningServer, key: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        server.base_url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def sandbox_account(server: RunningServer, key: str, handle: str, **credentials: str) -> str:
    """A new sandbox account; ``failure_mode``/``failure_count`` credentials script its failures."""
    data = graphql(
        server, key,
        'mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } userErrors { code } } }',
        {"c": {"handle": handle, **credentials}},
    )
    assert data["connectAccount"]["userErrors"] == [], data
    return data["connectAccount"]["account"]["id"]


def post_and_publish(server: RunningServer, key: str, account_ids: list[str], text: str) -> tuple[str, str]:
    """Create a post to the accounts and publish it now; returns (post id, job id)."""
    created = graphql(
        server, key,
        "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code message } } }",
        {"i": {"text": text, "targets": [{"accountId": a} for a in account_ids]}},
    )
    assert created["createPost"]["userErrors"] == [], created
    post_id = created["createPost"]["post"]["id"]
    published = graphql(
        server, key, "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } userErrors { code message } } }", {"id": post_id}
    )
    assert published["publishPost"]["userErrors"] == [], published
    return post_id, published["publishPost"]["job"]["id"]


def stored_job(server: RunningServer, key: str, job_id: str) -> dict[str, Any]:
    """The job's status and its stored events (seq, kind), as the API reports them."""
    return graphql(server, key, "query($id: ID!) { job(id: $id) { status events { seq kind } } }", {"id": job_id})["job"]
