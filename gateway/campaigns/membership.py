"""Whether a post may join a campaign: it exists in the post's organization and is still open.

Used by the posts service when a post is created or edited with a ``campaignId``; it imports
nothing of this wing, so ``content`` can call it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import find_owned
from gateway.core import UserError, is_id_of
from gateway.storage import Campaign

CLOSED_STATUSES = ("completed", "archived")


def campaign_not_found(campaign_id: str, field: str = "campaignId") -> UserError:
    return UserError("CAMPAIGN_NOT_FOUND", f"No campaign {campaign_id[:60]!r} in this organization.", [field])


def _refusal(campaign: Campaign | None, campaign_id: str, field: str) -> UserError | None:
    if campaign is None:
        return campaign_not_found(campaign_id, field)
    if campaign.status in CLOSED_STATUSES:
        return UserError("CAMPAIGN_CLOSED", f"The campaign is {campaign.status}; it takes no more posts.", [field])
    return None


async def campaign_refusals(session: AsyncSession, organization_id: str, campaign_ids: Iterable[str]) -> dict[str, UserError | None]:
    """For many campaign ids in one query: why posts may not join each (None: they may)."""
    wanted = [c for c in dict.fromkeys(campaign_ids) if is_id_of(c, "camp")]
    found = {}
    if wanted:
        query = select(Campaign).where(Campaign.id.in_(wanted), Campaign.organization_id == organization_id)
        found = {c.id: c for c in (await session.execute(query)).scalars()}
    return {c: _refusal(found.get(c), c, "campaignId") for c in dict.fromkeys(campaign_ids)}


async def require_open_campaign(
    session: AsyncSession, organization_id: str, campaign_id: str | None, field: str = "campaignId"
) -> Campaign | None:
    """The campaign a post is joining (None for no campaign); refused when missing or closed."""
    if campaign_id is None:
        return None
    campaign = await find_owned(session, Campaign, "camp", organization_id, campaign_id)
    if (refusal := _refusal(campaign, campaign_id, field)) is not None:
        raise refusal
    return campaign
