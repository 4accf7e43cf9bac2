"""Submitting a post for approval, approving a stage, rejecting, commenting: the thread of a post.

Each command locks the post (as every post command does), writes its thread entry and the post's
new state in one transaction, and returns the organization events to publish after the commit.
A post approved after its time publishes at once (its due targets are claimable again) or, when
the policy says ``lateApproval: miss``, its overdue targets are marked ``missed`` by the engine's
own withdrawal path, so their jobs finish and say so.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.approvals.gate import entry, request_stage
from gateway.approvals.policy import effective_policy
from gateway.content import lock_post, targets_of
from gateway.core import Forbidden, UserError, utcnow
from gateway.engine.queue import withdraw
from gateway.events import BusEvent, record_org_event
from gateway.storage import ApprovalEntry, Post

# The scope a caller needs to decide at each stage.
STAGE_SCOPES = {"review": "approvals:review", "client": "approvals:client"}
MAX_COMMENT = 5_000
APPROVED_EVENT = "post.approved"
REJECTED_EVENT = "post.rejected"


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key, or a client through a preview link (signed by the key that made it)."""

    key_id: str | None
    kind: str = "key"  # key|preview


@dataclass(frozen=True)
class Decision:
    post: Post
    events: list[BusEvent]


def _comment(text: str, *, required: bool = False) -> str:
    text = text.strip()
    if required and not text:
        raise UserError("COMMENT_REQUIRED", "Say why: a rejection carries a comment.", ["comment"])
    if len(text) > MAX_COMMENT:
        raise UserError("COMMENT_TOO_LONG", f"A comment is at most {MAX_COMMENT} characters.", ["comment"])
    return text


async def submit(session: AsyncSession, organization_id: str, post_id: str, actor: Actor, comment: str = "") -> Decision:
    """Ask for approval: the post becomes pending at the policy's first stage."""
    text = _comment(comment)
    post = await lock_post(session, organization_id, post_id)
    if post.approval_status == "pending":
        raise UserError("ALREADY_PENDING", "The post is already waiting for approval.", ["postId"])
    if post.approval_status == "approved":
        raise UserError("ALREADY_APPROVED", "The post is approved; edit it to ask again.", ["postId"])
    stage = (await effective_policy(session, organization_id)).policy.stages[0]
    session.add(entry(post, "submitted", stage, text, actor.key_id, actor.kind))
    return Decision(post, [await request_stage(session, post, stage, actor.key_id)])


async def _pending_at(session: AsyncSession, organization_id: str, post_id: str, stage: str) -> Post:
    post = await lock_post(session, organization_id, post_id)
    if post.approval_status != "pending":
        raise UserError("NOT_PENDING", f"The post is not waiting for approval (it is {post.approval_status}).", ["postId"])
    if post.approval_stage != stage:
        raise UserError("WRONG_STAGE", f"The post waits at the {post.approval_stage} stage, not {stage}.", ["stage"])
    return post


async def approve(session: AsyncSession, organization_id: str, post_id: str, stage: str, actor: Actor, comment: str = "") -> Decision:
    """Approve the stage the post waits at; the last stage clears it for publishing."""
    text = _comment(comment)
    post = await _pending_at(session, organization_id, post_id, stage)
    policy = (await effective_policy(session, organization_id)).policy
    stages = policy.stages
    later = stages[stages.index(stage) + 1:] if stage in stages else ()
    final = not later
    session.add(entry(post, "approved" if final else "advanced", stage, text, actor.key_id, actor.kind))
    payload = {"postId": post.id, "stage": stage, "final": final, "comment": text, "byKeyId": actor.key_id, "via": actor.kind}
    events = [await record_org_event(session, organization_id, APPROVED_EVENT, payload, post.id)]
    if not final:
        events.append(await request_stage(session, post, later[0], actor.key_id))
        return Decision(post, events)
    post.approval_status, post.approval_stage = "approved", None
    await session.flush()
    if policy.late_approval == "miss":
        events.extend(await _miss_overdue(session, post))
    return Decision(post, events)


async def _miss_overdue(session: AsyncSession, post: Post) -> list[BusEvent]:
    """Mark ``missed`` the targets whose time passed while the post waited for approval."""
    now = utcnow()
    targets = (await targets_of(session, [post.id]))[post.id]
    overdue = [t for t in targets if t.status == "scheduled" and t.publish_at is not None and t.publish_at <= now]
    return await withdraw(session, post, overdue, status="missed") if overdue else []


async def reject(
    session: AsyncSession, organization_id: str, post_id: str, actor: Actor, comment: str, stage: str | None = None,
    may_decide: Collection[str] = tuple(STAGE_SCOPES),
) -> Decision:
    """Reject the post at the stage it waits at (``stage``, when given, must be that one); a comment says why.

    ``may_decide``: the stages the caller holds the scope of; the stage is known only once the
    post is read, so the check is made here and refused as FORBIDDEN, as a missing scope is.
    """
    text = _comment(comment, required=True)
    post = await lock_post(session, organization_id, post_id)
    if post.approval_status != "pending":
        raise UserError("NOT_PENDING", f"The post is not waiting for approval (it is {post.approval_status}).", ["postId"])
    current = post.approval_stage
    if stage is not None and stage != current:
        raise UserError("WRONG_STAGE", f"The post waits at the {current} stage, not {stage}.", ["stage"])
    if current not in may_decide:
        raise Forbidden(f"This API key lacks the {STAGE_SCOPES.get(current or '', 'approvals:review')!r} scope.")
    session.add(entry(post, "rejected", current, text, actor.key_id, actor.kind))
    post.approval_status, post.approval_stage = "rejected", None
    await session.flush()
    payload = {"postId": post.id, "stage": current, "comment": text, "byKeyId": actor.key_id, "via": actor.kind}
    return Decision(post, [await record_org_event(session, organization_id, REJECTED_EVENT, payload, post.id)])


async def add_comment(session: AsyncSession, organization_id: str, post_id: str, actor: Actor, comment: str) -> ApprovalEntry:
    text = _comment(comment, required=True)
    post = await lock_post(session, organization_id, post_id)
    added = entry(post, "commented", post.approval_stage, text, actor.key_id, actor.kind)
    session.add(added)
    await session.flush()
    return added


async def threads(session: AsyncSession, post_ids: Sequence[str]) -> dict[str, list[ApprovalEntry]]:
    """Each post's thread, oldest first, in one query (a page of posts asks once)."""
    rows = (
        await session.execute(
            select(ApprovalEntry).where(ApprovalEntry.post_id.in_(post_ids)).order_by(ApprovalEntry.created_at, ApprovalEntry.id)
        )
    ).scalars()
    grouped: dict[str, list[ApprovalEntry]] = {post_id: [] for post_id in post_ids}
    for row in rows:
        grouped[row.post_id].append(row)
    return grouped
