"""Every sandbox failure mode, published through the real server, ends in its documented outcome."""

import re
import time

import httpx
import pytest

from tests.servers import serve

pytestmark = pytest.mark.e2e

# mode, failure_count → the target's final status and error code (README: "A sandbox account…")
EXPECTED = {
    ("none", "0"): ("PUBLISHED", None),
    ("transient", "1"): ("PUBLISHED", None),
    ("transient", "0"): ("FAILED", "SANDBOX_UNAVAILABLE"),
    ("auth_expired", "0"): ("FAILED", "AUTH_EXPIRED"),
    ("rejected", "0"): ("FAILED", "SANDBOX_REJECTED"),
    ("slow", "0"): ("PUBLISHED", None),
    ("unconfirmed", "0"): ("PUBLISHED", None),
}


def _graphql(server, key, query, variables=None):
    body = httpx.post(server.base_url + "/graphql", json={"query": query, "variables": variables or {}},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    assert "errors" not in body, body
    return body["data"]


def _connect(server, key, mode, count):
    data = _graphql(server, key, 'mutation($c: JSON!) { connectAccount(input: {provider: "sandbox", credentials: $c}) { account { id } } }',
                    {"c": {"handle": f"{mode}_{count}", "failure_mode": mode, "failure_count": count}})
    return data["connectAccount"]["account"]["id"]


def _publish(server, key, accounts):
    created = _graphql(server, key, "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } } }",
                       {"i": {"text": "every path", "targets": [{"accountId": a} for a in accounts]}})
    post_id = created["createPost"]["post"]["id"]
    return _graphql(server, key, "mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } } }", {"id": post_id})["publishPost"]["job"]["id"]


def _wait_job(server, key, job_id, timeout=60):
    query = """query($id: ID!) { job(id: $id) { status post { targets { status error { code } account { id status } } } } }"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _graphql(server, key, query, {"id": job_id})["job"]
        if job["status"] not in ("QUEUED", "RUNNING"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job still {job['status']}")


def test_every_failure_mode_ends_as_documented(tmp_path):
    env = {"SOCIALGATE_RETRY_BASE_SECONDS": "0.05", "SOCIALGATE_RETRY_MAX_SECONDS": "0.2", "SOCIALGATE_SCHEDULER_POLL_SECONDS": "0.2"}
    with serve(tmp_path, "--demo", env=env) as server:
        key = re.search(r"sg_live_[A-Za-z0-9]{44}", server.stdout()).group(0)
        accounts = {case: _connect(server, key, *case) for case in EXPECTED}
        job = _wait_job(server, key, _publish(server, key, list(accounts.values())))
        assert job["status"] == "PARTIAL"
        by_account = {t["account"]["id"]: t for t in job["post"]["targets"]}
        for case, account_id in accounts.items():
            target = by_account[account_id]
            code = target["error"]["code"] if target["error"] else None
            assert (target["status"], code) == EXPECTED[case], case
        assert by_account[accounts[("auth_expired", "0")]]["account"]["status"] == "TOKEN_EXPIRED"

        # Rate limited: the target waits the platform's 30 seconds; the account says why meanwhile.
        limited = _connect(server, key, "rate_limited", "1")
        job_id = _publish(server, key, [limited])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            target = _graphql(server, key, "query($id: ID!) { job(id: $id) { post { targets { status publishAt error { code } account { status rateLimitedUntil } } } } }",
                              {"id": job_id})["job"]["post"]["targets"][0]
            if target["status"] == "RETRY_PENDING":
                break
            time.sleep(0.2)
        assert target["status"] == "RETRY_PENDING" and target["error"]["code"] == "RATE_LIMITED"
        assert target["account"]["status"] == "RATE_LIMITED" and target["account"]["rateLimitedUntil"]
