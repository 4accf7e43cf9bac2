from sqlalchemy import func, select

from gateway.demo import seed_demo
from gateway.keys import authenticate
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
