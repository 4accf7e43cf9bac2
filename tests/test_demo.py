from sqlalchemy import func, select

from gateway.auth.keys import authenticate
from gateway.demo import seed_demo
from gateway.storage.models import ApiKey, Organization


async def test_demo_seeding_is_idempotent(runtime):
    first = await seed_demo(runtime)
    assert first.created and first.secret and first.secret.startswith("sg_live_")
    second = await seed_demo(runtime)
    assert not second.created
    assert second.secret is None
    assert second.organization_id == first.organization_id
    async with runtime.database.read() as session:
        assert (await session.execute(select(func.count()).select_from(Organization))).scalar() == 1
        assert (await session.execute(select(func.count()).select_from(ApiKey))).scalar() == 1
        principal = await authenticate(session, first.secret)
    assert principal.scopes == ("*",)
    assert principal.organization_id == first.organization_id


async def test_demo_has_one_sandbox_account_with_sealed_credentials(runtime):
    from gateway.storage import vault
    from gateway.storage.models import Account

    first = await seed_demo(runtime)
    second = await seed_demo(runtime)
    assert second.sandbox_account_id == first.sandbox_account_id
    async with runtime.database.read() as session:
        accounts = (await session.execute(select(Account))).scalars().all()
    (account,) = accounts
    assert (account.provider, account.handle, account.status) == ("sandbox", "demo", "active")
    assert account.organization_id == first.organization_id
    credentials = vault.decrypt(runtime.secret_key, account.credentials, associated=account.id)
    assert credentials["failure_mode"] == "none"
    assert runtime.plugins.get("sandbox") is not None
