"""Client preview links: a signed, expiring token that lets whoever holds it see some posts as
their platforms will show them, and approve or reject those posts at one stage, nothing else.

The token is a JWT (PyJWT, HS256) rather than a row: it carries the organization, the post ids,
the stage and the key that made it, and expires by its own ``exp`` claim. Its signing key is
derived from the installation's secret key for this one purpose, so a token of another kind (a
media URL token, say) can never pass for a preview link, nor the reverse.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.approvals.policy import effective_policy
from gateway.approvals.reviews import STAGE_SCOPES, Actor, Decision, approve, reject
from gateway.auth import find_owned_many, refusal_of, select_keys_with_organizations
from gateway.content import TargetCheck, dry_run, input_of, public_url, targets_of
from gateway.core import Forbidden, UserError, utcnow
from gateway.runtime import Runtime
from gateway.storage import Account, ApiKey, MediaAsset, Post, Target

ISSUER = "socialgate/preview"
ALGORITHM = "HS256"
MIN_EXPIRY = timedelta(minutes=5)
MAX_EXPIRY = timedelta(days=30)
MAX_POSTS = 50


class PreviewRefused(Exception):
    """The link cannot be used: ``code`` is EXPIRED, REVOKED (its key no longer stands) or INVALID
    (tampered, or not a preview link at all)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PreviewGrant:
    organization_id: str
    post_ids: tuple[str, ...]
    stage: str
    created_by_key_id: str | None
    expires_at: datetime


def _signing_key(secret_key: bytes) -> bytes:
    return hmac.new(secret_key, b"socialgate preview links v1", hashlib.sha256).digest()


async def create_link(
    session: AsyncSession, secret_key: bytes, organization_id: str, post_ids: Sequence[str], expires_in: timedelta,
    created_by_key_id: str | None, may_decide: Collection[str] = tuple(STAGE_SCOPES),
) -> tuple[str, PreviewGrant]:
    """A token for these posts of the org, acting at the policy's last stage (the client's, when there are two)."""
    wanted = tuple(dict.fromkeys(post_ids))
    if not wanted or len(wanted) > MAX_POSTS:
        raise UserError("INVALID_POST_IDS", f"Name between 1 and {MAX_POSTS} posts.", ["postIds"])
    if not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
        raise UserError("INVALID_EXPIRY", "expiresIn is between 5 minutes and 30 days (in seconds).", ["expiresIn"])
    found = await find_owned_many(session, Post, "post", organization_id, wanted)
    if missing := [p for p in wanted if p not in found]:
        raise UserError("POST_NOT_FOUND", f"No post {missing[0][:60]!r} in this organization.", ["postIds"])
    stage = (await effective_policy(session, organization_id)).policy.stages[-1]
    if stage not in may_decide:
        raise Forbidden(f"This API key lacks the {STAGE_SCOPES[stage]!r} scope the link would act with.")
    expires_at = (utcnow() + expires_in).replace(microsecond=0)
    grant = PreviewGrant(organization_id, wanted, stage, created_by_key_id, expires_at)
    return sign(secret_key, grant), grant


def sign(secret_key: bytes, grant: PreviewGrant) -> str:
    """The token of a grant (``open_link`` reads it back)."""
    claims = {
        "iss": ISSUER, "org": grant.organization_id, "posts": list(grant.post_ids), "stage": grant.stage,
        "by": grant.created_by_key_id, "exp": grant.expires_at,
    }
    return jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM)


def open_link(secret_key: bytes, token: str, now: datetime | None = None) -> PreviewGrant:
    """The grant a token carries, or PreviewRefused: an expired token says so; any other fault is INVALID."""
    try:
        claims = jwt.decode(
            token, _signing_key(secret_key), algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "iss", "org", "posts", "stage"], "verify_exp": False},
        )
    except jwt.InvalidTokenError:
        raise PreviewRefused("INVALID", "This preview link is not valid.") from None
    expires_at = datetime.fromtimestamp(claims["exp"], tz=(now or utcnow()).tzinfo)
    if expires_at <= (now or utcnow()):  # checked against our clock, so tests and servers agree on one time
        raise PreviewRefused("EXPIRED", "This preview link has expired; ask for a new one.")
    return PreviewGrant(claims["org"], tuple(claims["posts"]), claims["stage"], claims.get("by"), expires_at)


async def check_standing(session: AsyncSession, grant: PreviewGrant, *, kill_switch: bool) -> None:
    """A link lives only as long as the key that made it: revoked, expired or switched off (its
    org's or the global kill switch, a suspended org), the link stops too, as the key would."""
    row = (await session.execute(select_keys_with_organizations().where(ApiKey.id == grant.created_by_key_id))).first()
    if row is None or row.Organization.id != grant.organization_id or refusal_of(
        row.ApiKey, row.Organization, kill_switch=kill_switch, parent_killed=bool(row.parent_killed), now=utcnow()
    ) is not None:
        raise PreviewRefused("REVOKED", "This preview link no longer works; ask for a new one.")


async def decide(session: AsyncSession, grant: PreviewGrant, post_id: str, action: str, comment: str) -> Decision:
    """Approve or reject one of the grant's posts at the grant's stage; any other post is FORBIDDEN."""
    if post_id not in grant.post_ids:
        raise Forbidden("This preview link does not cover that post.")
    actor = Actor(grant.created_by_key_id, "preview")
    if action == "approve":
        return await approve(session, grant.organization_id, post_id, grant.stage, actor, comment)
    if action == "reject":
        return await reject(session, grant.organization_id, post_id, actor, comment, grant.stage, (grant.stage,))
    raise UserError("INVALID_ACTION", "A preview link can only approve or reject.", ["action"])


# -- what the page shows --------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaPreview:
    kind: str
    filename: str
    url: str
    alt_text: str


@dataclass(frozen=True)
class TargetPreview:
    provider: str
    provider_name: str
    handle: str
    display_name: str
    text: str
    text_length: int | None
    text_limit: int | None
    text_unit: str | None
    thread: tuple[str, ...]
    media: tuple[MediaPreview, ...]
    status: str


@dataclass(frozen=True)
class PostPreview:
    post_id: str
    approval_status: str
    approval_stage: str | None
    can_decide: bool  # waiting at the link's stage: the page offers Approve and Reject
    targets: tuple[TargetPreview, ...]


async def preview_posts(runtime: Runtime, grant: PreviewGrant) -> list[PostPreview]:
    """Each post of the grant as its platforms will show it: the text after the provider's
    override, measured as that provider counts it (the same check ``validatePost`` runs), and media."""
    async with runtime.database.read() as session:
        posts = await find_owned_many(session, Post, "post", grant.organization_id, grant.post_ids)
        grouped = await targets_of(session, list(posts))
        account_ids = {t.account_id for targets in grouped.values() for t in targets}
        accounts = {a.id: a for a in (await session.execute(select(Account).where(Account.id.in_(account_ids)))).scalars()}
        media_ids = {m for p in posts.values() for m in (p.content or {}).get("media_ids", [])}
        media = {m.id: m for m in (await session.execute(select(MediaAsset).where(MediaAsset.id.in_(media_ids)))).scalars()}
    previews = []
    for post_id in grant.post_ids:
        if (post := posts.get(post_id)) is None:
            continue  # deleted since the link was made
        targets = grouped[post.id]
        data = input_of(post, targets)
        checks = {c.account_id: c for c in (await dry_run(runtime.database, runtime.plugins, grant.organization_id, data)).targets}
        shown_media = tuple(
            MediaPreview(m.kind, m.filename, public_url(runtime.settings, runtime.secret_key, m), m.alt_text)
            for media_id in data.media_ids if (m := media.get(media_id)) is not None
        )
        previews.append(PostPreview(
            post.id, post.approval_status, post.approval_stage,
            post.approval_status == "pending" and post.approval_stage == grant.stage,
            tuple(_target_preview(runtime, t, data.overrides.get(t.provider, data.text), data.thread, accounts.get(t.account_id),
                                  checks.get(t.account_id), shown_media) for t in targets),
        ))
    return previews


def _target_preview(
    runtime: Runtime, target: Target, text: str, thread: tuple[str, ...], account: Account | None, check: TargetCheck | None,
    media: tuple[MediaPreview, ...],
) -> TargetPreview:
    provider = runtime.plugins.get(target.provider)
    return TargetPreview(
        provider=target.provider, provider_name=provider.name if provider is not None else target.provider,
        handle=account.handle if account else "", display_name=account.display_name if account else "",
        text=text, text_length=check.text_length if check else None, text_limit=check.text_limit if check else None,
        text_unit=check.text_unit if check else None, thread=thread, media=media, status=target.status,
    )
