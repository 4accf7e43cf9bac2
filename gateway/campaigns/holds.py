"""Which due targets the engine must leave alone because of their campaign.

The engine's claim adds ``claimable(targets)`` to its WHERE clause: a target whose post belongs
to a paused (or archived) campaign is never claimed, however overdue it is. The rule lives here,
beside the campaigns it is about, so the engine only asks and never knows why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists

from gateway.storage import Campaign, Post

# A campaign in one of these states holds its posts back from the engine.
HOLDING_STATUSES = ("paused", "archived")

_POSTS = Post.__table__
_CAMPAIGNS = Campaign.__table__


def claimable(targets: Any) -> Any:
    """A SQL condition over the ``targets`` table: true unless the target's campaign holds it."""
    held = (
        exists()
        .where(_POSTS.c.id == targets.c.post_id, _CAMPAIGNS.c.id == _POSTS.c.campaign_id)
        .where(_CAMPAIGNS.c.status.in_(HOLDING_STATUSES))
    )
    return ~held
