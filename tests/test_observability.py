"""Prometheus /metrics: scraped and parsed with prometheus_client's own parser, its access rules,
the series that move when a post is published, and the sum over processes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from gateway.core import clock
from gateway.observability import exposition, operation_label, sample_queue
from gateway.storage.models import Target
from tests.conftest import make_org_with_key
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for
from tests.servers import free_port

TOKEN = "scrape-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(api) -> dict:
    response = await api.http.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_a_publish_moves_the_series(tmp_path):
    async with engine_app(tmp_path, metrics_token=TOKEN) as api:
        org = await make_org_with_key(api.runtime)
        account = await sandbox_account(api, org.secret)
        post_id = await new_post(api, org.secret, [account])
        before = await scrape(api)
        body = await api.http.post("/graphql", json={"query": "mutation Go($id: ID!) { publishPost(input: {postId: $id}) { job { id } } }",
                                                     "variables": {"id": post_id}, "operationName": "Go"},
                                   headers={"Authorization": f"Bearer {org.secret}"})
        assert body.json()["data"]["publishPost"]["job"]["id"]
        waiting = await scrape(api)  # published by no one yet: the scheduler is left to the test
        assert value(waiting, "socialgate_queue_targets", status="scheduled", due="true") == 1
        await scheduler_for(api).drain()
        after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("socialgate_graphql_requests_total", operation="Go", outcome="ok") == 1
    assert moved("socialgate_graphql_request_duration_seconds_count", operation="Go") == 1
    assert moved("socialgate_publish_attempts_total", provider="sandbox", outcome="success") == 1
    assert moved("socialgate_job_duration_seconds_count", kind="publish", status="succeeded") == 1
    assert value(after, "socialgate_queue_targets", status="scheduled", due="true") == 0
    assert value(after, "socialgate_queue_oldest_due_age_seconds") == 0
    assert ("socialgate_db_connections_in_use", (("engine", "read"),)) in after


async def test_the_oldest_due_age_is_read_from_the_targets(tmp_path):
    async with engine_app(tmp_path, metrics_token=TOKEN) as api:
        org = await make_org_with_key(api.runtime)
        account = await sandbox_account(api, org.secret)
        await publish(api, org.secret, await new_post(api, org.secret, [account]))
        due_since = clock.utcnow() - timedelta(minutes=10)
        async with api.runtime.database.write() as session:
            await session.execute(update(Target).values(next_attempt_at=due_since))
        await sample_queue(api.runtime.database, now=due_since + timedelta(seconds=600))
        scraped = samples(exposition().decode())
        assert value(scraped, "socialgate_queue_oldest_due_age_seconds") == pytest.approx(600)
        assert value(scraped, "socialgate_queue_targets", status="scheduled", due="true") == 1


async def test_the_token_guards_the_scrape(tmp_path):
    async with engine_app(tmp_path, metrics_token=TOKEN) as api:
        assert (await api.http.get("/metrics")).status_code == 401
        refused = await api.http.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert refused.status_code == 401 and TOKEN not in refused.text
        assert (await api.http.get("/metrics", headers=AUTH)).status_code == 200


async def test_without_a_token_or_a_port_nothing_is_served(tmp_path):
    async with engine_app(tmp_path) as api:
        assert (await api.http.get("/metrics")).status_code == 404


async def test_a_port_of_its_own(tmp_path):
    port = free_port()
    async with engine_app(tmp_path, metrics_port=port) as api:
        assert (await api.http.get("/metrics")).status_code == 404  # not on the API's port
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert ("socialgate_queue_oldest_due_age_seconds", ()) in samples(response.text)


def test_a_short_token_is_refused():
    from gateway.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as refused:
        load_settings(metrics_token="short")
    assert "SOCIALGATE_METRICS_TOKEN" in str(refused.value) and "short" not in str(refused.value)


def test_operation_names_are_bounded_label_values():
    assert operation_label(None) == "anonymous"
    assert operation_label("x" * 65) == "other"  # longer than any name a dashboard shows
    assert operation_label("not a name") == "other"
    assert operation_label("publishPost") == "publishPost"
    many = [operation_label(f"op{n}") for n in range(300)]
    assert "other" in many and operation_label("publishPost") == "publishPost"  # the first ones keep their names


def test_processes_are_summed_in_multiprocess_mode(tmp_path, monkeypatch):
    """Two processes count an attempt each in PROMETHEUS_MULTIPROC_DIR; one scrape shows both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = "from gateway.observability import count_publish_attempt; count_publish_attempt('sandbox', 'success')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    scraped = samples(exposition().decode())
    assert value(scraped, "socialgate_publish_attempts_total", provider="sandbox", outcome="success") == 2


async def test_events_carried_from_another_process_are_counted(runtime):
    from gateway.events import record_org_event

    owner = await make_org_with_key(runtime)
    before = samples(exposition().decode())
    # The relay carries events only to organizations someone here follows.
    subscription = runtime.events.subscribe(owner.organization_id)
    try:
        async with runtime.database.write() as session:  # stored by "another process": this one never published it
            await record_org_event(session, owner.organization_id, "account.connected", {"accountId": "acct_x"})
        await runtime.relay.catch_up(settled_only=False)
    finally:
        subscription.close()
    after = samples(exposition().decode())
    assert value(after, "socialgate_events_relayed_total", kind="account.connected") - value(
        before, "socialgate_events_relayed_total", kind="account.connected") == 1


@pytest.mark.e2e
async def test_open_subscriptions_are_counted_on_a_real_server(tmp_path):
    """A jobEvents stream over SSE is counted while it is open, on the server's own /metrics."""
    import json
    import re

    from tests.servers import FAST_RETRIES, serve

    env = {**FAST_RETRIES, "SOCIALGATE_METRICS_TOKEN": TOKEN, "SOCIALGATE_RUN_SCHEDULER": "false"}
    with serve(tmp_path, "--demo", env=env) as server:
        key = re.search(r"sg_live_[A-Za-z0-9]{44}", server.stdout()).group(0)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            async def graphql(query: str, variables: dict) -> dict:
                return (await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)).json()["data"]

            account = (await graphql('mutation { connectAccount(input: {provider: "sandbox", credentials: {handle: "m"}}) { account { id } } }', {}))
            post = await graphql("mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } } }",
                                 {"i": {"text": "counted", "targets": [{"accountId": account["connectAccount"]["account"]["id"]}]}})
            job = await graphql("mutation($id: ID!) { publishPost(input: {postId: $id}) { job { id } } }", {"id": post["createPost"]["post"]["id"]})
            body = {"query": "subscription($id: ID!) { jobEvents(jobId: $id) { seq } }", "variables": {"id": job["publishPost"]["job"]["id"]}}

            async def open_now() -> float:
                return value(samples((await http.get("/metrics", headers=AUTH)).text), "socialgate_subscriptions_open", field="jobEvents")

            assert await open_now() == 0
            async with http.stream("POST", "/graphql", json=body, headers={**headers, "Accept": "text/event-stream"}) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data:") and "jobEvents" in line and json.loads(line[5:])["data"]["jobEvents"]["seq"] == 1:
                        # The stored job.queued replayed: the resolver runs, and with no scheduler the
                        # job never ends, so the stream is open while this reads.
                        assert await open_now() == 1
                        break


async def test_webhook_calls_are_counted_by_outcome(tmp_path):
    from gateway.auth import Principal
    from gateway.runtime import Runtime
    from gateway.settings import load_settings
    from tests.test_webhooks import NO_WAIT, deliver, emit, register
    from tests.webhook_receiver import running_receiver

    runtime = Runtime(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hooks.db", data_dir=str(tmp_path), allow_private_urls=True))
    await runtime.start()
    try:
        made = await make_org_with_key(runtime)
        principal = Principal(made.api_key_id, made.organization_id, ("*",))
        async with running_receiver() as receiving:
            await register(runtime, principal, receiving.url("/flaky"))
            receiving.script("/flaky", 500)
            before = samples(exposition().decode())
            await emit(runtime, made.organization_id)
            assert await deliver(runtime, rounds=3, ladder=NO_WAIT) == [1, 1, 0]
        after = samples(exposition().decode())
    finally:
        await runtime.stop()
    for outcome in ("failed", "delivered"):
        name = "socialgate_webhook_delivery_attempts_total"
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == 1, outcome


async def test_connections_in_use_follow_the_pool(runtime):
    def in_use() -> float:
        return value(samples(exposition().decode()), "socialgate_db_connections_in_use", engine="read")

    idle = in_use()
    async with runtime.database.read() as session:
        await session.execute(select(1))
        assert in_use() == idle + 1
    assert in_use() == idle


@pytest.mark.e2e
async def test_a_worker_serves_its_own_metrics_port_and_counts_what_it_publishes(tmp_path):
    """The API has no scheduler; the worker publishes, and its own /metrics says so."""
    import signal

    from tests.waiting import until

    port = free_port()
    async with engine_app(tmp_path) as api:
        org = await make_org_with_key(api.runtime)
        account = await sandbox_account(api, org.secret)
        await publish(api, org.secret, await new_post(api, org.secret, [account]))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALGATE_")}
        env.update(SOCIALGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/engine.db", SOCIALGATE_DATA_DIR=str(tmp_path),
                   SOCIALGATE_SCHEDULER_POLL_SECONDS="0.1", SOCIALGATE_METRICS_PORT=str(port))
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, stdout=log, stderr=log)
        try:
            async def published() -> bool:
                try:
                    async with httpx.AsyncClient() as http:
                        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    return False  # not listening yet
                return value(samples(text), "socialgate_publish_attempts_total", provider="sandbox", outcome="success") == 1

            await until(published, timeout=60)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
