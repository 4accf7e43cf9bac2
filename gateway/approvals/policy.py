"""An organization's approval policy, stored in its settings; a sub-org without one inherits its parent's.

Kept in ``Organization.settings`` (a JSON column every org already has) rather than a table of
its own: one policy per org, read with the org, and no join for the inheritance of one level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core import UserError
from gateway.storage import Organization

SETTINGS_KEY = "approvalPolicy"
STAGES = ("review", "client")  # in this order: the client sees what the reviewers passed
LATE_APPROVAL = ("publish", "miss")  # a post approved after its time: publish at once, or mark it missed
MAX_COUNT = 10_000


@dataclass(frozen=True)
class ApprovalPolicy:
    requires_approval: bool = False
    stages: tuple[str, ...] = ("review",)
    first_n_posts_blocked: int = 0
    trust_threshold: int = 0  # 0: never trusted; K: after K approvals in a row, posts go straight through
    late_approval: str = "publish"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"stages": list(self.stages)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApprovalPolicy:
        return cls(**{**data, "stages": tuple(data.get("stages", ("review",)))})


@dataclass(frozen=True)
class EffectivePolicy:
    policy: ApprovalPolicy
    inherited_from: str | None  # the parent org whose policy applies, when the org has none of its own


def validate(policy: ApprovalPolicy) -> ApprovalPolicy:
    """Refuse a policy the gate could not apply, with a stable code per field."""
    if policy.stages not in (("review",), ("review", "client")):
        raise UserError("INVALID_STAGES", "Stages are [REVIEW] or [REVIEW, CLIENT], in that order.", ["stages"])
    for name, value in (("firstNPostsBlocked", policy.first_n_posts_blocked), ("trustThreshold", policy.trust_threshold)):
        if not 0 <= value <= MAX_COUNT:
            raise UserError("INVALID_COUNT", f"{name} is between 0 and {MAX_COUNT}.", [name])
    if policy.late_approval not in LATE_APPROVAL:
        raise UserError("INVALID_LATE_APPROVAL", "lateApproval is PUBLISH or MISS.", ["lateApproval"])
    return policy


def own_policy(organization: Organization) -> ApprovalPolicy | None:
    return _policy_in(organization.settings)


def _policy_in(settings: dict[str, Any] | None) -> ApprovalPolicy | None:
    data = (settings or {}).get(SETTINGS_KEY)
    return ApprovalPolicy.from_json(data) if data is not None else None


_ORGS = Organization.__table__
_PARENTS = _ORGS.alias("parent")
# The org's settings and its parent's, in one Core statement built once: createPost asks on every
# call, and two ORM loads of whole organizations (Session.get, identity map) cost more than the rest
# of its checks together.
_POLICY_SOURCES = (
    select(_ORGS.c.settings, _PARENTS.c.id.label("parent_id"), _PARENTS.c.settings.label("parent_settings"))
    .select_from(_ORGS.outerjoin(_PARENTS, _PARENTS.c.id == _ORGS.c.parent_id))
    .where(_ORGS.c.id == bindparam("organization_id"))
)


async def effective_policy(session: AsyncSession, organization_id: str) -> EffectivePolicy:
    """The org's own policy, else its parent's (one level of children), else the default (no approval)."""
    row = (await session.execute(_POLICY_SOURCES, {"organization_id": organization_id})).first()
    if row is None:
        return EffectivePolicy(ApprovalPolicy(), None)
    if (own := _policy_in(row.settings)) is not None:
        return EffectivePolicy(own, None)
    if row.parent_id is not None and (inherited := _policy_in(row.parent_settings)) is not None:
        return EffectivePolicy(inherited, row.parent_id)
    return EffectivePolicy(ApprovalPolicy(), None)


async def set_policy(session: AsyncSession, organization_id: str, policy: ApprovalPolicy | None) -> EffectivePolicy:
    """Set the org's own policy; None clears it, so the org inherits its parent's again."""
    organization = await session.get(Organization, organization_id)
    assert organization is not None  # the caller's own organization
    settings = dict(organization.settings or {})
    if policy is None:
        settings.pop(SETTINGS_KEY, None)
    else:
        settings[SETTINGS_KEY] = validate(policy).to_json()
    organization.settings = settings
    await session.flush()
    return await effective_policy(session, organization_id)
