import asyncio

import pytest
from sqlalchemy import func, select

from gateway.core.errors import UserError
from gateway.orgs.organizations import create_organization
from gateway.storage.idempotency import run_idempotent
from gateway.storage.models import IdempotencyRecord, Organization
from tests.conftest import make_org_with_key


async def _count(runtime, model) -> int:
    async with runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar()


async def test_concurrent_duplicates_wait_for_the_first_and_share_its_result(runtime):
    owner = await make_org_with_key(runtime)
    started = 0

    async def work(session):
        nonlocal started
        started += 1
        await asyncio.sleep(0.2)  # long enough that every duplicate arrives while it runs
        organization = await create_organization(session, "Made once")
        return {"id": organization.id}

    results = await asyncio.gather(
        *(run_idempotent(runtime.database, owner.organization_id, "op", "k1", {"a": 1}, work) for _ in range(10))
    )
    assert started == 1
    assert len({r["id"] for r in results}) == 1
    assert await _count(runtime, Organization) == 2


async def test_a_failed_first_attempt_releases_the_key(runtime):
    owner = await make_org_with_key(runtime)

    async def failing(session):
        await create_organization(session, "Half written")
        raise UserError("NOPE", "no")

    with pytest.raises(UserError):
        await run_idempotent(runtime.database, owner.organization_id, "op", "k2", {"a": 1}, failing)
    assert await _count(runtime, Organization) == 1  # the half-written row was rolled back
    assert await _count(runtime, IdempotencyRecord) == 0

    async def working(session):
        return {"id": (await create_organization(session, "Second try")).id}

    result = await run_idempotent(runtime.database, owner.organization_id, "op", "k2", {"a": 1}, working)
    assert result["id"].startswith("org_")


async def test_keys_are_scoped_per_organization_and_operation(runtime):
    first = await make_org_with_key(runtime, name="A")
    second = await make_org_with_key(runtime, name="B")
    calls = []

    async def work(session):
        calls.append(1)
        return {"n": len(calls)}

    await run_idempotent(runtime.database, first.organization_id, "op", "same", {}, work)
    await run_idempotent(runtime.database, second.organization_id, "op", "same", {}, work)
    await run_idempotent(runtime.database, first.organization_id, "other-op", "same", {}, work)
    assert len(calls) == 3


async def test_invalid_keys(runtime):
    owner = await make_org_with_key(runtime)

    async def work(session):
        return {}

    for key in ("", "k" * 256):
        with pytest.raises(UserError) as caught:
            await run_idempotent(runtime.database, owner.organization_id, "op", key, {}, work)
        assert caught.value.code == "IDEMPOTENCY_KEY_INVALID"


async def test_a_holder_whose_claim_was_taken_over_cannot_record_its_work(runtime):
    """A claim judged dead is taken over; if its holder was alive after all, its result is refused."""
    from sqlalchemy import update

    from gateway.core.errors import Conflict

    owner = await make_org_with_key(runtime)

    async def work(session):
        return {"id": (await create_organization(session, "Twice?")).id}

    async def taken_over_meanwhile(transaction):
        async with runtime.database.write() as session:  # what a retry does with a claim it finds stale
            await session.execute(update(IdempotencyRecord).values(id="idem_" + "t" * 24))
        return await transaction()

    with pytest.raises(Conflict):
        await run_idempotent(runtime.database, owner.organization_id, "op", "k3", {}, work, runner=taken_over_meanwhile)
    assert await _count(runtime, Organization) == 1  # the work was rolled back
    assert await _count(runtime, IdempotencyRecord) == 1  # the other request's claim is untouched
