"""The token lifecycle: refresh one account, refresh ahead of expiry, one refresh at a time."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from gateway.accounts.accounts import open_credentials
from gateway.accounts.tokens import merge_token_set, refresh_account_token, refresh_expiring
from gateway.core.clock import utcnow
from gateway.runtime import Runtime
from gateway.storage.models import Account
from providers import RateLimited, TokenSet, TransientError
from tests.oauth_flow import allow, connect, platform, poll, private_urls, settings, standin, tls  # noqa: F401 - fixtures
from tests.oauth_platform import install, standin_provider


async def _connected(api, org, platform, user="alice", **behaviour) -> Account:
    """An account connected through the OAuth flow, as the platform's ``user``."""
    platform.server.user = user
    for name, value in behaviour.items():
        setattr(platform.server, name, value)
    await allow(api, org.secret)
    connection_id, landed = await connect(api, org.secret)
    assert landed["status"] == ["succeeded"], landed
    return await _account(api, (await poll(api, org.secret, connection_id))["account"]["id"])


async def _account(api, account_id) -> Account:
    async with api.runtime.database.read() as session:
        return await session.get(Account, account_id)


def test_merging_keeps_what_the_platform_did_not_replace():
    stored = {"access_token": "a1", "refresh_token": "r1", "expires_at": "2026-01-01T00:00:00+00:00", "scopes": "w r", "team": "t1"}
    later = datetime(2026, 1, 2, tzinfo=UTC)
    assert merge_token_set(stored, TokenSet("a2", expires_at=later)) == {
        "access_token": "a2", "refresh_token": "r1", "expires_at": later.isoformat(), "scopes": "w r", "team": "t1", "token_type": "Bearer",
    }
    rotated = merge_token_set(stored, TokenSet("a3", refresh_token="r2", scopes=("w",)))
    assert rotated["refresh_token"] == "r2" and rotated["scopes"] == "w"
    assert "expires_at" not in rotated  # a stale expiry is worse than none


async def test_a_refresh_keeps_a_refresh_token_the_platform_did_not_replace(api, org, platform, standin):
    account = await _connected(api, org, platform, rotate_refresh_tokens=False, access_ttl_seconds=60)
    before = open_credentials(api.runtime.secret_key, account)
    platform.server.access_ttl_seconds = 7200
    assert await refresh_account_token(api.runtime, account.id) is True
    after_row = await _account(api, account.id)
    after = open_credentials(api.runtime.secret_key, after_row)
    assert after["refresh_token"] == before["refresh_token"]
    assert after["access_token"] != before["access_token"] and after["access_token"] in platform.server.access_tokens
    assert timedelta(hours=1, minutes=59) < after_row.token_expires_at - utcnow() <= timedelta(hours=2)
    assert after_row.credentials_version == account.credentials_version + 1 and after_row.refresh_lease_until is None
    [refresh] = [r for r in platform.server.token_requests if r["grant_type"] == "refresh_token"]
    assert refresh["refresh_token"] == before["refresh_token"]


async def test_a_rotated_refresh_token_replaces_the_spent_one(api, org, platform, standin):
    account = await _connected(api, org, platform)
    spent = open_credentials(api.runtime.secret_key, account)["refresh_token"]
    assert await refresh_account_token(api.runtime, account.id) is True
    rotated = open_credentials(api.runtime.secret_key, await _account(api, account.id))["refresh_token"]
    assert rotated != spent and spent not in platform.server.refresh_tokens and rotated in platform.server.refresh_tokens
    assert await refresh_account_token(api.runtime, account.id) is True  # the new one works in turn
    assert platform.server.grant_types().count("refresh_token") == 2


async def test_a_refused_refresh_expires_the_account_and_tells_the_org(api, org, platform, standin):
    account = await _connected(api, org, platform)
    platform.server.refresh_tokens.clear()  # the user revoked the app
    subscription = api.runtime.events.subscribe(org.organization_id)
    assert await refresh_account_token(api.runtime, account.id) is False
    event = await asyncio.wait_for(subscription.next(), 5)
    assert event.kind == "account.token_expired"
    assert event.payload == {"accountId": account.id, "provider": "standin", "reason": "INVALID_GRANT"}
    row = await _account(api, account.id)
    assert row.status == "token_expired" and row.refresh_lease_until is None
    listed = await api.graphql("{ accounts { nodes { id status } } }", key=org.secret)
    assert listed["data"]["accounts"]["nodes"] == [{"id": account.id, "status": "TOKEN_EXPIRED"}]
    subscription.close()


async def test_an_account_without_a_refresh_token_expires_without_a_platform_call(api, org, platform, standin):
    account = await _connected(api, org, platform, issue_refresh_tokens=False)
    subscription = api.runtime.events.subscribe(org.organization_id)
    assert await refresh_account_token(api.runtime, account.id) is False
    assert (await asyncio.wait_for(subscription.next(), 5)).payload["reason"] == "no_refresh_token"
    assert "refresh_token" not in platform.server.grant_types()
    subscription.close()


@pytest.mark.parametrize(("status", "error"), [(503, TransientError), (429, RateLimited)])
async def test_a_platform_that_cannot_answer_now_leaves_the_account_for_a_later_try(api, org, platform, standin, status, error):
    account = await _connected(api, org, platform)
    platform.server.token_failures = [status]
    with pytest.raises(error):
        await refresh_account_token(api.runtime, account.id)
    row = await _account(api, account.id)
    assert (row.status, row.refresh_lease_until, row.credentials_version) == ("active", None, account.credentials_version)
    assert await refresh_account_token(api.runtime, account.id) is True


async def test_concurrent_refreshes_in_one_process_spend_the_refresh_token_once(api, org, platform, standin):
    account = await _connected(api, org, platform)
    platform.server.refresh_delay = 0.2
    results = await asyncio.gather(*(refresh_account_token(api.runtime, account.id) for _ in range(5)))
    assert results == [True] * 5
    assert platform.server.grant_types().count("refresh_token") == 1
    assert len(api.runtime.account_locks) == 0


async def test_concurrent_refreshes_in_two_processes_spend_the_refresh_token_once(api, org, platform, standin, settings):
    account = await _connected(api, org, platform)
    other = Runtime(settings)  # another gateway process on the same database: its own locks
    await other.start()
    install(other, standin_provider(platform.base_url))
    platform.server.refresh_delay = 0.3
    try:
        results = await asyncio.gather(refresh_account_token(api.runtime, account.id), refresh_account_token(other, account.id))
    finally:
        await other.stop()
    assert results == [True, True]
    assert platform.server.grant_types().count("refresh_token") == 1


async def test_a_dead_processs_lease_is_taken_over_once_it_lapses(api, org, platform, standin):
    account = await _connected(api, org, platform)
    async with api.runtime.database.write() as session:
        await session.execute(update(Account).values(refresh_lease_until=utcnow() + timedelta(milliseconds=300)))
    assert await refresh_account_token(api.runtime, account.id) is True
    assert platform.server.grant_types().count("refresh_token") == 1


async def test_a_reconnect_during_a_refresh_wins(api, org, platform, standin):
    account = await _connected(api, org, platform)
    platform.server.hold_refreshes = asyncio.Event()
    refreshing = asyncio.create_task(refresh_account_token(api.runtime, account.id))
    await asyncio.wait_for(platform.server.refresh_arrived.wait(), 10)  # the refresh is at the platform
    await _connected(api, org, platform)  # the same identity connected again meanwhile
    reconnected = open_credentials(api.runtime.secret_key, await _account(api, account.id))
    platform.server.hold_refreshes.set()
    assert await refreshing is True
    assert open_credentials(api.runtime.secret_key, await _account(api, account.id)) == reconnected


async def test_disconnected_and_unknown_accounts_are_not_refreshed(api, org, platform, standin):
    account = await _connected(api, org, platform)
    body = await api.graphql("mutation($id: ID!) { disconnectAccount(input: {id: $id}) { userErrors { code } } }", {"id": account.id}, key=org.secret)
    assert body["data"]["disconnectAccount"]["userErrors"] == []
    assert await refresh_account_token(api.runtime, account.id) is False
    assert await refresh_account_token(api.runtime, "acct_" + "x" * 24) is False
    assert "refresh_token" not in platform.server.grant_types()


async def test_refresh_ahead_renews_only_tokens_that_expire_soon_and_can_be_renewed(api, org, platform, standin):
    soon = await _connected(api, org, platform, user="soon", access_ttl_seconds=300)
    later = await _connected(api, org, platform, user="later", access_ttl_seconds=7200)
    unrenewable = await _connected(api, org, platform, user="norefresh", access_ttl_seconds=300, issue_refresh_tokens=False)
    revoked = await _connected(api, org, platform, user="revoked", access_ttl_seconds=60, issue_refresh_tokens=True)
    platform.server.refresh_tokens.pop(open_credentials(api.runtime.secret_key, revoked)["refresh_token"])
    platform.server.access_ttl_seconds = 3600

    sweep = await refresh_expiring(api.runtime)
    assert (sweep.refreshed, sorted(sweep.expired), sweep.deferred) == ([soon.id], [revoked.id], [])
    assert (await _account(api, soon.id)).token_expires_at - utcnow() > timedelta(minutes=50)
    assert (await _account(api, later.id)).credentials_version == later.credentials_version
    assert (await _account(api, unrenewable.id)).status == "active"
    assert (await _account(api, revoked.id)).status == "token_expired"

    platform.server.token_failures = [503]
    async with api.runtime.database.write() as session:
        await session.execute(update(Account).where(Account.id == soon.id).values(token_expires_at=utcnow()))
    deferred = await refresh_expiring(api.runtime, within=timedelta(minutes=1))
    assert (deferred.refreshed, deferred.expired, deferred.deferred) == ([], [], [soon.id])


async def test_a_token_that_expires_in_a_worker_reaches_the_servers_subscribers(api, org, platform, standin, settings):
    """account.token_expired is stored with the account's new status: the server's relay carries it over."""
    account = await _connected(api, org, platform)
    platform.server.refresh_tokens.clear()
    worker = Runtime(settings)  # a `socialgate worker` on the same database
    await worker.start()
    install(worker, standin_provider(platform.base_url))
    subscription = api.runtime.events.subscribe(org.organization_id)
    try:
        assert await refresh_account_token(worker, account.id) is False
    finally:
        await worker.stop()
    await api.runtime.relay.relay_once()
    event = await asyncio.wait_for(subscription.next(), 5)
    assert (event.kind, event.payload) == ("account.token_expired", {"accountId": account.id, "provider": "standin", "reason": "INVALID_GRANT"})


async def test_an_oauth_connect_reaches_another_processs_subscribers(api, org, platform, standin, settings):
    other = Runtime(settings)  # the server a dashboard is connected to; `api` took the callback
    await other.start()
    try:
        subscription = other.events.subscribe(org.organization_id)
        account = await _connected(api, org, platform)
        await other.relay.relay_once()
        event = await asyncio.wait_for(subscription.next(), 5)
    finally:
        await other.stop()
    assert event.kind == "account.connected"
    assert event.payload["accountId"] == account.id and event.payload["provider"] == "standin"
    assert event.payload["connectionId"].startswith("con")
