"""The embedded demo: an organization, an all-scopes key and a sandbox account, made once.

A second `serve --demo` finds the demo organization again (it is marked in its metadata), makes
nothing new and never re-prints a secret: it cannot, since only the hash was kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from gateway.keys import mint_key
from gateway.organizations import create_organization
from gateway.runtime import Runtime
from gateway.storage.models import Organization

DEMO_MARKER = ("socialgate_demo", "true")
DEMO_ORG_NAME = "Demo organization"


@dataclass(frozen=True)
class DemoSeed:
    organization_id: str
    organization_name: str
    created: bool
    api_key_id: str | None = None
    secret: str | None = None  # only when this call created the key


async def seed_demo(runtime: Runtime) -> DemoSeed:
    marker_key, marker_value = DEMO_MARKER
    async with runtime.database.write() as session:
        existing = (
            await session.execute(
                select(Organization)
                .where(Organization.metadata_[marker_key].as_string() == marker_value)
                .order_by(Organization.created_at)
                .limit(1)
            )
        ).scalar_one_or_none()
        if existing is not None:
            return DemoSeed(organization_id=existing.id, organization_name=existing.name, created=False)
        organization = await create_organization(session, DEMO_ORG_NAME, metadata={marker_key: marker_value})
        minted = await mint_key(session, organization.id, ["*"], name="demo key")
        return DemoSeed(
            organization_id=organization.id,
            organization_name=organization.name,
            created=True,
            api_key_id=minted.key.id,
            secret=minted.secret,
        )
