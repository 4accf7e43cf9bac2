"""One provider call: what it reads, the request it sends, and what the answer means to the engine.

The rules that turn a platform's answer into an engine outcome live here and nowhere else: which
errors retry, a token refreshed once after it expired, a platform asked whether the post exists
after an answer was lost. Recovery's reconcile of a dead worker's call is the very same path, so
a call taken over is judged exactly as one that ended here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, select

from gateway.accounts import open_credentials, refresh_account_token
from gateway.content import file_path, public_url
from gateway.engine.rows import ACCOUNTS, MEDIA, POSTS, TARGETS, TargetRow, read_targets, target_select
from gateway.outbound import UnsafeURL
from gateway.runtime import Runtime
from gateway.storage import Attempt, VaultError
from providers import (
    AuthExpired,
    FileSource,
    Processing,
    ProviderError,
    PublishMedia,
    PublishRequest,
    PublishResult,
    RateLimited,
    Rejected,
    ThreadPart,
    TransientError,
    Unconfirmed,
)
from providers.validation import publish_checked

# A provider call must end well before its lease, so a live worker never loses a lease to recovery.
LEASE_MARGIN = 0.8


@dataclass
class Outcome:
    """What happened to one attempt, in the engine's words."""

    kind: str  # success|processing|rate_limited|transient|auth_expired|rejected|unconfirmed|lease_expired|error
    result: PublishResult | None = None
    processing: Processing | None = None  # kind "processing": the platform accepted the post and works on it
    error: ProviderError | None = None
    code: str | None = None
    message: str | None = None


class Loaded(NamedTuple):
    """What one provider call reads: rows of the target, its post, its account and live media."""

    target: TargetRow
    post: Row[Any]
    account: Row[Any]
    media: list[Row[Any]]


# Built once: a statement built per round costs its construction and its cache key each time.
_POSTS_BY_ID = select(POSTS).where(POSTS.c.id.in_(bindparam("ids", expanding=True)))
_ACCOUNTS_BY_ID = select(ACCOUNTS).where(ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
_MEDIA_BY_ID = select(MEDIA).where(MEDIA.c.id.in_(bindparam("ids", expanding=True)))


async def load_many(session: Any, targets: list[TargetRow]) -> dict[str, Loaded]:
    """Each target's post, account and live media, in three queries whatever their number."""
    posts = {p.id: p for p in await session.execute(_POSTS_BY_ID, {"ids": list({t.post_id for t in targets})})}
    accounts = {a.id: a for a in await session.execute(_ACCOUNTS_BY_ID, {"ids": list({t.account_id for t in targets})})}
    media_ids = {m for p in posts.values() for m in (p.content or {}).get("media_ids", [])}
    media = {m.id: m for m in await session.execute(_MEDIA_BY_ID, {"ids": list(media_ids)})} if media_ids else {}
    loaded = {}
    for target in targets:
        post = posts[target.post_id]
        wanted = (post.content or {}).get("media_ids", [])
        attached = [media[m] for m in wanted if m in media and media[m].deleted_at is None]
        loaded[target.id] = Loaded(target, post, accounts[target.account_id], attached)
    return loaded


def missing_media(post: Row[Any], media: list[Row[Any]]) -> list[str]:
    """The post's media ids that have no live asset (``load_many`` reads only live ones)."""
    live = {m.id for m in media}
    return [m for m in (post.content or {}).get("media_ids", []) if m not in live]


def classify(error: ProviderError) -> Outcome:
    """The engine's outcome for a provider's error: its class in the SDK's taxonomy decides."""
    kind = (
        "rate_limited" if isinstance(error, RateLimited)
        else "transient" if isinstance(error, TransientError)
        else "auth_expired" if isinstance(error, AuthExpired)
        else "unconfirmed" if isinstance(error, Unconfirmed)
        else "rejected" if isinstance(error, Rejected)
        else "rejected"
    )
    return Outcome(kind, error=error, code=error.code, message=error.message)


class ProviderCalls:
    """A scheduler's calls to providers: publish, with what must follow at once, and reconcile.

    ``reconcile_seconds`` bounds one reconcile (never more than the lease allows a call), so a
    hung platform holds one recovery slot that long and no more.
    """

    def __init__(self, runtime: Runtime, *, reconcile_seconds: float) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.call_seconds = self.settings.lease_seconds * LEASE_MARGIN
        self.reconcile_seconds = min(reconcile_seconds, self.call_seconds)

    async def load(self, target_id: str) -> Loaded:
        async with self.runtime.database.read() as session:
            [target] = await read_targets(session, target_select().where(TARGETS.c.id == target_id))
            return (await load_many(session, [target]))[target_id]

    def request(self, target: TargetRow, post: Row[Any], media: list[Row[Any]]) -> PublishRequest:
        content = post.content or {}
        attachments = tuple(
            PublishMedia(
                kind=m.kind, mime_type=m.mime_type, size_bytes=m.size_bytes, url=public_url(self.settings, self.runtime.secret_key, m),
                source=FileSource(file_path(self.settings, m)), alt_text=m.alt_text, width=m.width, height=m.height,
                duration_ms=m.duration_ms, filename=m.filename,
            )
            for m in media
        )
        return PublishRequest(
            text=content.get("overrides", {}).get(target.provider, post.text),
            # Stable across every retry of this target: platforms that deduplicate use it, and
            # reconcile finds a post whose answer was lost by it.
            idempotency_key=target.id,
            media=attachments,
            settings=content.get("settings", {}).get(target.account_id, {}),
            thread=tuple(ThreadPart(text=part) for part in content.get("thread", [])),
        )

    async def publish(self, target_id: str, loaded: Loaded | None = None) -> Outcome:
        """The provider call, and what follows at once: a token refresh, or a reconcile."""
        outcome, account_id = await self.call_provider(target_id, loaded)
        if outcome.kind == "auth_expired" and account_id is not None:
            outcome = await self._after_auth_expired(target_id, account_id, outcome)
        if outcome.kind == "unconfirmed" and account_id is not None:
            # The platform may have the post: ask it before anyone decides anything.
            outcome = await self.reconcile(target_id, unconfirmed=outcome)
        return outcome

    async def call_provider(self, target_id: str, loaded: Loaded | None = None) -> tuple[Outcome, str | None]:
        """The bare call, without what ``publish`` adds after it; with the account's id when the
        call got as far as the account (a refresh or a reconcile then makes sense)."""
        target, post, account, media = loaded or await self.load(target_id)
        provider = self.runtime.plugins.get(target.provider)
        if provider is None:
            return Outcome("rejected", code="PROVIDER_UNAVAILABLE", message=f"The {target.provider!r} provider is not installed."), None
        # A target that answered Processing is polled, never published again: its upload is on the platform.
        polling = target.processing_handle is not None
        if polling and not provider.implements("poll"):
            return Outcome("rejected", code="PROCESSING_UNSUPPORTED", message=f"The {target.provider!r} provider cannot check on processing media."), None
        if not polling and (missing := missing_media(post, media)):
            # Publishing without them would put out a different post than the one validated.
            message = f"Media {', '.join(missing)} of this post was deleted; attach media again and retry."
            return Outcome("rejected", code="MEDIA_MISSING", message=message), None
        if account.status == "disconnected" or account.credentials is None:
            return Outcome("rejected", code="ACCOUNT_DISCONNECTED", message="The account was disconnected."), None
        if account.status == "token_expired":
            return Outcome("rejected", code="TOKEN_EXPIRED", message="The account's authorization expired; reconnect it."), None
        try:
            credentials = open_credentials(self.runtime.secret_key, account)
        except VaultError:  # this worker's key is wrong, not the post: another worker may open them
            return Outcome("transient", code="CREDENTIALS_UNREADABLE", message="The stored credentials cannot be opened with this secret key."), None
        request = self.request(target, post, media)
        context = self.runtime.provider_context(provider.id, account.id, credentials)
        timeout = self.call_seconds
        try:
            async with asyncio.timeout(timeout):  # no task of its own per call, unlike wait_for
                if polling:
                    result = await provider.poll(context, request, target.processing_handle)
                else:
                    result = await publish_checked(provider, context, request)
        except TimeoutError:
            if context.phase.interrupted_while_preparing:  # uploading or processing media: nothing was posted
                message = f"Still preparing the post (media upload or processing) after {timeout:.0f}s; nothing was published, so it is tried again."
                return Outcome("transient", code="TIMEOUT", message=message), account.id
            return Outcome("unconfirmed", code="TIMEOUT", message=f"No answer within {timeout:.0f}s; the post may exist."), account.id
        except ProviderError as error:
            return classify(error), account.id
        except UnsafeURL as error:  # refused before connecting: nothing was sent
            return Outcome("rejected", code=error.code, message=error.message), account.id
        if isinstance(result, Processing):
            if not provider.implements("poll"):  # it could never be checked on: a bug of the provider's, said plainly
                message = f"The {target.provider!r} provider answered Processing but cannot be polled."
                return Outcome("rejected", code="PROCESSING_UNSUPPORTED", message=message), account.id
            return Outcome("processing", processing=result), account.id
        return Outcome("success", result=result), account.id

    async def _after_auth_expired(self, target_id: str, account_id: str, outcome: Outcome) -> Outcome:
        """Refresh the token once and retry; a second expiry in a row, or a failed refresh, fails."""
        async with self.runtime.database.read() as session:
            previous = (
                await session.execute(
                    select(Attempt.outcome).where(Attempt.target_id == target_id, Attempt.finished_at.is_not(None))
                    .order_by(Attempt.number.desc()).limit(1)
                )
            ).scalar()
        if previous == "auth_expired":
            return Outcome("rejected", error=outcome.error, code="AUTH_EXPIRED", message="Authorization expired again after a refresh.")
        try:
            refreshed = await refresh_account_token(self.runtime, account_id)
        except ProviderError as error:  # the platform's token endpoint is down: try again later
            return Outcome("transient", error=error, code=error.code, message=error.message)
        if refreshed:
            return Outcome("auth_expired", error=outcome.error, code=outcome.code, message="Token refreshed; retrying.")
        return Outcome("rejected", error=outcome.error, code="AUTH_EXPIRED", message="Authorization expired and could not be refreshed; reconnect the account.")

    async def reconcile(self, target_id: str, unconfirmed: Outcome | None = None) -> Outcome:
        """Ask the provider whether the post exists; without an answer the target is unconfirmed."""
        target, post, account, media = await self.load(target_id)
        provider = self.runtime.plugins.get(target.provider)
        lost = (
            f"{unconfirmed.message} The post may or may not exist." if unconfirmed and unconfirmed.message
            else "The worker publishing this target stopped mid-call; the post may or may not exist."
        )
        code = unconfirmed.code if unconfirmed and unconfirmed.code else "LEASE_EXPIRED"
        if provider is None or not provider.implements("reconcile") or account.credentials is None:
            return Outcome("unconfirmed", error=unconfirmed.error if unconfirmed else None, code=code, message=lost)
        timeout = self.reconcile_seconds
        try:
            credentials = open_credentials(self.runtime.secret_key, account)
            context = self.runtime.provider_context(provider.id, account.id, credentials)
            async with asyncio.timeout(timeout):
                found = await provider.reconcile(context, self.request(target, post, media))
        except (ProviderError, VaultError, TimeoutError) as error:
            reason = str(error)[:200] or f"no answer within {timeout:g}s"
            return Outcome("unconfirmed", code="RECONCILE_FAILED", message=f"{lost} Checking failed: {reason}")
        if found is not None:
            return Outcome("success", result=found)
        return Outcome("unconfirmed", code=code, message=lost + " The platform shows no such post yet.")
