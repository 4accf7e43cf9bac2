import asyncio

import pytest
from sqlalchemy import select, update

from gateway.auth.keys import KEY_PATTERN, authenticate, hash_secret, mint_key
from gateway.auth.scopes import covers, grants, is_valid_scope
from gateway.core.clock import utcnow
from gateway.core.errors import Forbidden, Unauthenticated, UserError
from gateway.storage.models import ApiKey, Organization
from tests.conftest import make_org_with_key
from tests.lifespan import lifespan_of
from tests.on_disk import assert_not_on_disk

VIEWER = "{ viewer { apiKeyId scopes organization { id name } } }"


async def test_secret_is_stored_only_as_a_hash(runtime, settings, tmp_path):
    created = await make_org_with_key(runtime, scopes=["posts:*"])
    assert KEY_PATTERN.match(created.secret)
    async with runtime.database.read() as session:
        key = (await session.execute(select(ApiKey))).scalar_one()
    assert key.secret_hash == hash_secret(created.secret)
    assert created.secret[len("sg_live_"):] not in repr(vars(key))
    await runtime.stop()
    # Nothing on disk holds the secret (or its private half) in the clear.
    secret_half = created.secret[-32:].encode()
    scanned = assert_not_on_disk(secret_half, tmp_path.iterdir())
    assert tmp_path / "socialgate.db" in scanned


async def test_authenticate_returns_the_principal(runtime):
    created = await make_org_with_key(runtime, scopes=["posts:*", "accounts:read"])
    async with runtime.database.read() as session:
        principal = await authenticate(session, created.secret)
    assert principal.api_key_id == created.api_key_id
    assert principal.organization_id == created.organization_id
    assert principal.scopes == ("accounts:read", "posts:*")


async def test_keys_reject_unknown_scopes(runtime):
    async with runtime.database.write() as session:
        organization = (await session.execute(select(Organization))).scalar_one_or_none()
    with pytest.raises(UserError) as caught:
        async with runtime.database.write() as session:
            await mint_key(session, "org_x", ["posts:fly"])
    assert caught.value.code == "INVALID_SCOPE"
    assert organization is None


def test_scope_wildcards():
    assert grants("*", "ads:write:campaigns")
    assert grants("posts:*", "posts:read")
    assert grants("ads:write:*", "ads:write:budgets")
    assert grants("ads:write:*", "ads:write")
    assert not grants("posts:*", "postsx:read")
    assert not grants("posts:read", "posts:write")
    assert not grants("ads:write:*", "ads:read")
    assert is_valid_scope("posts:*") and is_valid_scope("*") and is_valid_scope("ads:write:*")
    assert not is_valid_scope("posts:fly") and not is_valid_scope("POSTS:*") and not is_valid_scope("")
    assert covers(["posts:*"], ["posts:read", "posts:write"])
    assert covers(["*"], ["ads:write:*"])
    assert not covers(["posts:read", "posts:write"], ["posts:*"])
    assert not covers(["posts:*"], ["accounts:read"])


async def test_valid_key_reads_viewer(api, org):
    body = await api.graphql(VIEWER, key=org.secret)
    assert "errors" not in body
    assert {"data": body["data"]} == {
        "data": {
            "viewer": {
                "apiKeyId": org.api_key_id,
                "scopes": ["*"],
                "organization": {"id": org.organization_id, "name": "Acme"},
            }
        }
    }


def _tamper(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer sg_live_short",
        "Bearer sg_test_" + "a" * 44,
        "Bearer sg_live_" + "a" * 44,
        "TAMPERED",
        "REVOKED",
        "EXPIRED",
    ],
)
async def test_unauthenticated_cases_look_the_same(api, org, header):
    if header == "TAMPERED":
        header = "Bearer " + _tamper(org.secret)
    elif header in ("REVOKED", "EXPIRED"):
        column = ApiKey.revoked_at if header == "REVOKED" else ApiKey.expires_at
        async with api.runtime.database.write() as session:
            await session.execute(update(ApiKey).values({column: utcnow()}))
        header = "Bearer " + org.secret
    headers = {} if header is None else {"Authorization": header}
    body = await api.graphql(VIEWER, headers=headers)
    assert body["data"] == {"viewer": None}  # root fields are nullable: the error nulls its own field
    [error] = body["errors"]
    assert error["message"] == "The API key is missing or invalid."
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["requestId"].startswith("req_")


async def test_failures_take_the_same_path(runtime, monkeypatch):
    """Malformed, unknown and wrong keys all do one lookup and one constant-time compare."""
    created = await make_org_with_key(runtime)
    import gateway.auth.keys as keys

    compares = []
    real_compare = keys.hmac.compare_digest
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: compares.append(1) or real_compare(a, b))
    for token in [None, "junk", "sg_live_" + "b" * 44, _tamper(created.secret)]:
        async with runtime.database.read() as session:
            with pytest.raises(Unauthenticated):
                await authenticate(session, token)
    assert len(compares) == 4


async def test_suspended_org_and_kill_switches_are_forbidden(runtime):
    created = await make_org_with_key(runtime)
    async with runtime.database.read() as session:
        with pytest.raises(Forbidden):
            await authenticate(session, created.secret, kill_switch=True)
    async with runtime.database.write() as session:
        await session.execute(update(Organization).values(status="suspended"))
    async with runtime.database.read() as session:
        with pytest.raises(Forbidden, match="suspended"):
            await authenticate(session, created.secret)


async def test_last_used_is_recorded(api, org):
    before = utcnow()
    await api.graphql(VIEWER, key=org.secret)
    async with api.runtime.database.read() as session:
        key = await session.get(ApiKey, org.api_key_id)
    assert before <= key.last_used_at.replace(tzinfo=before.tzinfo) <= utcnow()


async def test_concurrent_requests_with_one_key(api, org):
    results = await asyncio.gather(*(api.graphql(VIEWER, key=org.secret) for _ in range(20)))
    assert all(r["data"]["viewer"]["apiKeyId"] == org.api_key_id for r in results)


async def test_global_kill_switch_refuses_every_key(tmp_path):
    import httpx
    
    from gateway.app import create_app
    from gateway.settings import load_settings

    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/k.db", data_dir=str(tmp_path), kill_switch=True)
    app = create_app(settings)
    async with lifespan_of(app) as manager:
        created = await make_org_with_key(app.state.runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http:
            body = (await http.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {created.secret}"})).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
