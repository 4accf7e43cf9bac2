"""The approval gate: what a new or edited post needs, and the predicate the engine's claim uses.

The gate is enforced where publishing happens, not only in the API: the scheduler's claim query
adds ``cleared_for_publishing``, so a due target of a post that is not cleared is never claimed,
whoever queued it and however. Each rule that makes a post need approval is decided once, when
the post is written, and kept in ``posts.approval_status``: the claim then reads one column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.approvals.policy import ApprovalPolicy, effective_policy
from gateway.core import new_id
from gateway.events import BusEvent, record_org_event
from gateway.storage import ApprovalEntry, Post, Target

# Approval states a post may be published in. "none" is what posts written before approvals had.
CLEARED = ("none", "not_required", "approved")
APPROVAL_STATUSES = ("not_required", "required", "pending", "approved", "rejected")
REQUESTED_EVENT = "post.approval_requested"


def cleared_for_publishing(targets: Any, posts: Any) -> Any:
    """SQL: the target's post may be published (its approval state is cleared). For the engine's claim."""
    return exists().where(posts.c.id == targets.c.post_id, posts.c.approval_status.in_(CLEARED))


async def approvals_in_a_row(session: AsyncSession, organization_id: str, limit: int) -> int:
    """How many final decisions, newest first, were approvals before the last rejection (at most ``limit``)."""
    decisions = (
        await session.execute(
            select(ApprovalEntry.action)
            .where(ApprovalEntry.organization_id == organization_id, ApprovalEntry.action.in_(("approved", "rejected")))
            .order_by(ApprovalEntry.created_at.desc(), ApprovalEntry.id.desc())
            .limit(limit)
        )
    ).scalars()
    streak = 0
    for action in decisions:
        if action == "rejected":
            break
        streak += 1
    return streak


async def _among_first(session: AsyncSession, organization_id: str, account_ids: Sequence[str], n: int) -> bool:
    """Whether a new post is among the org's first ``n`` posts, or among any of its accounts' first ``n``."""
    if n <= 0:
        return False
    org_posts = (await session.execute(select(func.count()).select_from(Post).where(Post.organization_id == organization_id))).scalar_one()
    if org_posts < n:
        return True
    if not account_ids:
        return False
    per_account = (
        await session.execute(
            select(Target.account_id, func.count()).where(Target.account_id.in_(account_ids)).group_by(Target.account_id)
        )
    ).all()
    counts = {account_id: count for account_id, count in per_account}
    return any(counts.get(account_id, 0) < n for account_id in account_ids)


async def needs_approval(session: AsyncSession, organization_id: str, account_ids: Sequence[str]) -> bool:
    """Whether a post about to be created for these accounts needs approval before it may publish.

    The first N posts of the org, or of a newly connected account, always do, even when the policy
    is off. Otherwise the policy decides, unless the org has earned trust: its last K decisions
    were all approvals.
    """
    policy: ApprovalPolicy = (await effective_policy(session, organization_id)).policy
    if await _among_first(session, organization_id, account_ids, policy.first_n_posts_blocked):
        return True
    if not policy.requires_approval:
        return False
    threshold = policy.trust_threshold
    return not (threshold > 0 and await approvals_in_a_row(session, organization_id, threshold) >= threshold)


async def initial_status(session: AsyncSession, organization_id: str, account_ids: Sequence[str]) -> str:
    """The approval state of a post being created (before it is flushed)."""
    return "required" if await needs_approval(session, organization_id, account_ids) else "not_required"


def entry(post: Post, action: str, stage: str | None, comment: str = "", author_key_id: str | None = None, author_kind: str = "key") -> ApprovalEntry:
    return ApprovalEntry(
        id=new_id("apv"), organization_id=post.organization_id, post_id=post.id, action=action, stage=stage,
        comment=comment, author_key_id=author_key_id, author_kind=author_kind,
    )


async def request_stage(session: AsyncSession, post: Post, stage: str, author_key_id: str | None) -> BusEvent:
    """Put the post in ``pending(stage)`` and store ``post.approval_requested``."""
    post.approval_status = "pending"
    post.approval_stage = stage
    await session.flush()
    return await record_org_event(
        session, post.organization_id, REQUESTED_EVENT, {"postId": post.id, "stage": stage, "byKeyId": author_key_id}, post.id
    )


async def content_edited(session: AsyncSession, post: Post, author_key_id: str | None) -> BusEvent | None:
    """An approved post whose content changed goes back to pending at the first stage: what was
    approved is not what would publish any more. Its store-first event reaches subscribers through
    the relay."""
    if post.approval_status != "approved":
        return None
    policy = (await effective_policy(session, post.organization_id)).policy
    session.add(entry(post, "reopened", policy.stages[0], "The content changed after approval.", author_key_id))
    return await request_stage(session, post, policy.stages[0], author_key_id)
