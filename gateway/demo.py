"""The embedded demo: an organization, an all-scopes key and a sandbox account, made once.

A second `serve --demo` finds the demo organization again (it is marked in its metadata), makes
nothing new and never re-prints a secret: it cannot, since only the hash was kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from gateway.auth import mint_key
from gateway.core import new_id
from gateway.orgs import create_organization
from gateway.runtime import Runtime
from gateway.storage import Account, Organization, encrypt

DEMO_MARKER = ("socialgate_demo", "true")
DEMO_ORG_NAME = "Demo organization"
DEMO_HANDLE = "demo"
# The sandbox credentials form, filled in: no failure injected.
DEMO_SANDBOX_CREDENTIALS = {"handle": DEMO_HANDLE, "failure_mode": "none", "failure_count": "0"}


@dataclass(frozen=True)
class DemoSeed:
    organization_id: str
    organization_name: str
    created: bool
    sandbox_account_id: str
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
            account = await _ensure_sandbox_account(runtime, session, existing.id)
            return DemoSeed(existing.id, existing.name, created=False, sandbox_account_id=account.id)
        organization = await create_organization(session, DEMO_ORG_NAME, metadata={marker_key: marker_value})
        minted = await mint_key(session, organization.id, ["*"], name="demo key")
        account = await _ensure_sandbox_account(runtime, session, organization.id)
        return DemoSeed(
            organization_id=organization.id,
            organization_name=organization.name,
            created=True,
            sandbox_account_id=account.id,
            api_key_id=minted.key.id,
            secret=minted.secret,
        )


async def _ensure_sandbox_account(runtime: Runtime, session: Any, organization_id: str) -> Account:
    """The demo's sandbox account, created once (a demo seeded before it existed gains it too)."""
    external_id = f"sandbox:{DEMO_HANDLE}"
    account = (
        await session.execute(
            select(Account).where(
                Account.organization_id == organization_id, Account.provider == "sandbox", Account.external_id == external_id
            )
        )
    ).scalar_one_or_none()
    if account is not None:
        return account
    account_id = new_id("acct")
    account = Account(
        id=account_id,
        organization_id=organization_id,
        provider="sandbox",
        external_id=external_id,
        handle=DEMO_HANDLE,
        display_name=f"Sandbox @{DEMO_HANDLE}",
        status="active",
        credentials=encrypt(runtime.secret_key, DEMO_SANDBOX_CREDENTIALS, associated=account_id),
    )
    session.add(account)
    await session.flush()
    return account
