"""Approvals: the org's policy, a post's approval state and thread, submit / approve / reject / comment."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gateway.approvals import policy as policies
from gateway.approvals import previews, reviews
from gateway.approvals.gate import APPROVAL_STATUSES
from gateway.auth import has_scope
from gateway.campaigns.campaigns import campaign_post_ids
from gateway.storage import ApprovalEntry as EntryRow
from gateway.storage import Post as PostRow
from schema.context import Info
from schema.payloads import UserErrorType, run_mutation

if TYPE_CHECKING:
    from schema.posts import PostType

ApprovalStage = strawberry.enum(Enum("ApprovalStage", {s.upper(): s for s in policies.STAGES}))  # type: ignore[misc]
ApprovalStatus = strawberry.enum(  # type: ignore[misc]
    Enum("ApprovalStatus", {s.upper(): s for s in APPROVAL_STATUSES}),
    description="not_required → (required →) pending(stage) → approved | rejected. Only not_required and approved publish.",
)
LateApproval = strawberry.enum(  # type: ignore[misc]
    Enum("LateApproval", {s.upper(): s for s in policies.LATE_APPROVAL}),
    description="A post approved after its time: PUBLISH at once, or MISS (its overdue targets become `missed`).",
)


@strawberry.type(name="ApprovalPolicy")
class ApprovalPolicyType:
    requires_approval: bool
    stages: list[ApprovalStage]  # type: ignore[valid-type]
    first_n_posts_blocked: int = strawberry.field(
        description="The org's first N posts, and each newly connected account's first N, need approval even when it is off."
    )
    trust_threshold: int = strawberry.field(description="After this many approvals in a row, posts need none until a rejection; 0: never.")
    late_approval: LateApproval  # type: ignore[valid-type]
    inherited_from: strawberry.ID | None = strawberry.field(description="The parent org whose policy applies, when this org has none.")

    @classmethod
    def from_effective(cls, effective: policies.EffectivePolicy) -> ApprovalPolicyType:
        p = effective.policy
        return cls(
            requires_approval=p.requires_approval, stages=[ApprovalStage(s) for s in p.stages],
            first_n_posts_blocked=p.first_n_posts_blocked, trust_threshold=p.trust_threshold,
            late_approval=LateApproval(p.late_approval),
            inherited_from=strawberry.ID(effective.inherited_from) if effective.inherited_from else None,
        )


@strawberry.type(name="ApprovalComment", description="One entry of a post's approval thread.")
class ApprovalCommentType:
    id: strawberry.ID
    action: str = strawberry.field(description="submitted, advanced (a stage passed), approved, rejected, commented or reopened.")
    stage: ApprovalStage | None  # type: ignore[valid-type]
    comment: str
    author_key_id: strawberry.ID | None
    via: str = strawberry.field(description="key, or preview when a client acted through a preview link.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: EntryRow) -> ApprovalCommentType:
        return cls(
            id=strawberry.ID(row.id), action=row.action, stage=ApprovalStage(row.stage) if row.stage else None, comment=row.comment,
            author_key_id=strawberry.ID(row.author_key_id) if row.author_key_id else None, via=row.author_kind, created_at=row.created_at,
        )


@strawberry.type(name="PostApproval")
class PostApprovalType:
    status: ApprovalStatus  # type: ignore[valid-type]
    stage: ApprovalStage | None  # type: ignore[valid-type]
    comments: list[ApprovalCommentType]


def approval_of(row: PostRow, thread: list[EntryRow]) -> PostApprovalType:
    status = "not_required" if row.approval_status == "none" else row.approval_status
    return PostApprovalType(
        status=ApprovalStatus(status), stage=ApprovalStage(row.approval_stage) if row.approval_stage else None,
        comments=[ApprovalCommentType.from_row(e) for e in thread],
    )


@strawberry.input
class ApprovalPolicyInput:
    requires_approval: bool
    stages: list[ApprovalStage] = strawberry.field(default_factory=lambda: [ApprovalStage("review")])  # type: ignore[valid-type]
    first_n_posts_blocked: int = 0
    trust_threshold: int = 0
    late_approval: LateApproval = LateApproval("publish")  # type: ignore[valid-type]


@strawberry.input
class SetApprovalPolicyInput:
    policy: ApprovalPolicyInput | None = strawberry.field(description="null clears the org's own policy: it inherits its parent's again.")


@strawberry.input
class SubmitPostForApprovalInput:
    post_id: strawberry.ID
    comment: str = ""


@strawberry.input
class ApprovePostInput:
    post_id: strawberry.ID
    stage: ApprovalStage  # type: ignore[valid-type]
    comment: str = ""


@strawberry.input
class RejectPostInput:
    post_id: strawberry.ID
    comment: str
    stage: ApprovalStage | None = None  # type: ignore[valid-type]


@strawberry.input
class CommentOnPostInput:
    post_id: strawberry.ID
    comment: str


@strawberry.type
class ApprovalPolicyPayload:
    policy: ApprovalPolicyType | None
    user_errors: list[UserErrorType]


@strawberry.type
class PostApprovalPayload:
    post: Annotated[PostType, strawberry.lazy("schema.posts")] | None
    user_errors: list[UserErrorType]


@strawberry.type
class ApprovalCommentPayload:
    comment: ApprovalCommentType | None
    user_errors: list[UserErrorType]


@strawberry.input
class CreatePreviewLinkInput:
    post_id: strawberry.ID | None = strawberry.field(default=None, description="One post; or name several in postIds.")
    post_ids: list[strawberry.ID] | None = None
    campaign_id: strawberry.ID | None = strawberry.field(default=None, description="Every post of a campaign (with any posts named).")
    expires_in: int = strawberry.field(default=7 * 24 * 3600, description="Seconds, from 300 (5 minutes) to 2592000 (30 days).")


@strawberry.type(name="PreviewLink", description="A signed, expiring page where a client sees posts and approves or rejects them.")
class PreviewLinkType:
    url: str = strawberry.field(description="Anyone holding it can see these posts and decide at this stage until it expires.")
    expires_at: datetime
    post_ids: list[strawberry.ID]
    stage: ApprovalStage  # type: ignore[valid-type]


@strawberry.type
class PreviewLinkPayload:
    preview_link: PreviewLinkType | None
    user_errors: list[UserErrorType]


def _may_decide(info: Info) -> set[str]:
    """The stages whose scope the caller's key holds."""
    scopes = info.context.principal.scopes
    return {stage for stage, scope in reviews.STAGE_SCOPES.items() if has_scope(scopes, scope)}


def _stage(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)


async def _decide(info: Info, scope: str, work: Any) -> PostApprovalPayload:
    """Run a decision in one transaction, then publish its events and wake the scheduler."""
    decision, errors = await run_mutation(info, scope, work)
    if decision is None:
        return PostApprovalPayload(post=None, user_errors=errors)
    from schema.posts import PostType  # schema.posts shows each post's approval with this module's types

    runtime = info.context.runtime
    for event in decision.events:
        await runtime.publish(event, subject_id=decision.post.id)
    runtime.wake_scheduler()
    return PostApprovalPayload(post=PostType.from_row(decision.post), user_errors=[])


@strawberry.type
class ApprovalQuery:
    @strawberry.field(description="The caller's organization's approval policy (its own, or inherited from its parent).")
    async def approval_policy(self, info: Info) -> ApprovalPolicyType | None:
        principal = info.context.require("org:read")
        async with info.context.runtime.database.read() as session:
            return ApprovalPolicyType.from_effective(await policies.effective_policy(session, principal.organization_id))


@strawberry.type
class ApprovalMutation:
    @strawberry.mutation(description="Set (or clear) the organization's approval policy (needs org:admin).")
    async def set_approval_policy(self, info: Info, input: SetApprovalPolicyInput) -> ApprovalPolicyPayload:
        given = input.policy
        policy = None if given is None else policies.ApprovalPolicy(
            requires_approval=given.requires_approval, stages=tuple(_stage(s) for s in given.stages),
            first_n_posts_blocked=given.first_n_posts_blocked, trust_threshold=given.trust_threshold,
            late_approval=_stage(given.late_approval),
        )

        async def work(session: Any, principal: Any) -> policies.EffectivePolicy:
            return await policies.set_policy(session, principal.organization_id, policy)

        effective, errors = await run_mutation(info, "org:admin", work)
        return ApprovalPolicyPayload(policy=ApprovalPolicyType.from_effective(effective) if effective else None, user_errors=errors)

    @strawberry.mutation(description="Ask for approval: the post waits at the policy's first stage.")
    async def submit_post_for_approval(self, info: Info, input: SubmitPostForApprovalInput) -> PostApprovalPayload:
        async def work(session: Any, principal: Any) -> reviews.Decision:
            actor = reviews.Actor(principal.api_key_id)
            return await reviews.submit(session, principal.organization_id, str(input.post_id), actor, input.comment)

        return await _decide(info, "posts:write", work)

    @strawberry.mutation(description="Approve the stage a post waits at (needs approvals:review or approvals:client).")
    async def approve_post(self, info: Info, input: ApprovePostInput) -> PostApprovalPayload:
        stage = _stage(input.stage)

        async def work(session: Any, principal: Any) -> reviews.Decision:
            actor = reviews.Actor(principal.api_key_id)
            return await reviews.approve(session, principal.organization_id, str(input.post_id), stage, actor, input.comment)

        return await _decide(info, reviews.STAGE_SCOPES[stage], work)

    @strawberry.mutation(description="Reject a post waiting for approval, saying why; it will not publish.")
    async def reject_post(self, info: Info, input: RejectPostInput) -> PostApprovalPayload:
        allowed = _may_decide(info)
        wanted = _stage(input.stage) if input.stage is not None else None
        scope = reviews.STAGE_SCOPES[wanted] if wanted else (reviews.STAGE_SCOPES[min(allowed)] if allowed else "approvals:review")

        async def work(session: Any, principal: Any) -> reviews.Decision:
            actor = reviews.Actor(principal.api_key_id)
            return await reviews.reject(session, principal.organization_id, str(input.post_id), actor, input.comment, wanted, allowed)

        return await _decide(info, scope, work)

    @strawberry.mutation(description="Add a comment to a post's approval thread (posts:write, approvals:review or approvals:client).")
    async def comment_on_post(self, info: Info, input: CommentOnPostInput) -> ApprovalCommentPayload:
        scopes = info.context.principal.scopes
        scope = next((s for s in ("posts:write", *reviews.STAGE_SCOPES.values()) if has_scope(scopes, s)), "posts:write")

        async def work(session: Any, principal: Any) -> EntryRow:
            return await reviews.add_comment(session, principal.organization_id, str(input.post_id), reviews.Actor(principal.api_key_id), input.comment)

        row, errors = await run_mutation(info, scope, work)
        return ApprovalCommentPayload(comment=ApprovalCommentType.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        description="A signed link to /preview/{token} showing these posts as their platforms will, with Approve and Reject "
        "at the policy's last stage (needs posts:read and that stage's scope)."
    )
    async def create_preview_link(self, info: Info, input: CreatePreviewLinkInput) -> PreviewLinkPayload:
        ids = [str(i) for i in ([input.post_id] if input.post_id else []) + list(input.post_ids or [])]
        allowed = _may_decide(info)
        runtime = info.context.runtime

        async def work(session: Any, principal: Any) -> tuple[str, previews.PreviewGrant]:
            wanted = list(ids)
            if input.campaign_id is not None:
                wanted += [p for p in await campaign_post_ids(session, principal.organization_id, str(input.campaign_id)) if p not in wanted]
            return await previews.create_link(
                session, runtime.secret_key, principal.organization_id, wanted, timedelta(seconds=input.expires_in), principal.api_key_id,
                allowed,
            )

        made, errors = await run_mutation(info, "posts:read", work)
        if made is None:
            return PreviewLinkPayload(preview_link=None, user_errors=errors)
        token, grant = made
        return PreviewLinkPayload(
            preview_link=PreviewLinkType(
                url=f"{runtime.settings.base_url}/preview/{token}", expires_at=grant.expires_at,
                post_ids=[strawberry.ID(p) for p in grant.post_ids], stage=ApprovalStage(grant.stage),
            ),
            user_errors=[],
        )
