"""``Provider``: the base class every platform adapter subclasses.

Declarations are class attributes (read-only on instances); behaviour is async methods. Only
``publish`` is required; the others are implemented where ``capabilities`` (or ``auth``) say so,
and a conformance run checks that the two agree::

    class Mastodon(Provider):
        id = "mastodon"
        name = "Mastodon"
        capabilities = Capabilities(delete=True, threads=True)
        limits = Limits(max_text_length=500, max_media=4, media_kinds=frozenset({"image"}), max_thread_parts=25)
        auth = OAuth2Spec(authorize_url=..., token_url=..., scopes=("write:statuses",))

        async def publish(self, ctx, request):
            ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from providers.ads import AdsAdapter
from providers.calls import AccountProfile, PublishRequest, PublishResult, TokenSet
from providers.context import ProviderContext
from providers.declarations import Capabilities, CredentialField, Limits, OAuth2Spec, SettingField
from providers.errors import NotSupported
from providers.metrics import AccountMetricSnapshot, MetricSnapshot, MetricsSpec
from providers.processing import Processing, SettingChoice

if TYPE_CHECKING:
    from providers.validation import Issue, PostDraft

AuthKind = Literal["oauth2", "credentials", "none"]
Auth = OAuth2Spec | tuple[CredentialField, ...]

DECLARATIONS = ("id", "name", "capabilities", "limits", "auth", "settings", "ads", "metrics", "approval")

# Optional operations, and the capability (or auth kind) that promises each one.
OPTIONAL_OPERATIONS = {
    "delete": "capabilities.delete",
    "fetch_metrics": "capabilities.metrics",
    "fetch_account_metrics": "metrics.account",
    "reconcile": "capabilities.reconcile",
    "poll": "capabilities.processing",
    "setting_choices": "a setting with choices_from_account",
    "refresh_token": "auth.refreshable",
    "exchange_code": "auth is OAuth2Spec",
    "connect": "auth is a credentials form",
}


class Provider:
    """A platform adapter. Subclass it, set the declarations, implement ``publish``."""

    id: ClassVar[str]
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    limits: ClassVar[Limits] = Limits()
    auth: ClassVar[Auth] = ()
    settings: ClassVar[tuple[SettingField, ...]] = ()
    ads: ClassVar[AdsAdapter | None] = None
    # What the provider reads (``providers.metrics``); set exactly when ``capabilities.metrics``.
    metrics: ClassVar[MetricsSpec | None] = None
    description: ClassVar[str] = ""
    # What the platform must approve before the provider works for anyone (app review, an
    # allow-list, API access granted on request), in a sentence ("None: …" when nothing is);
    # empty when the provider does not say. Shown by ``socialgate providers``, the providers
    # query and docs/providers.md, so nobody builds on a platform that will not let them in.
    approval: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in DECLARATIONS:
            raise AttributeError(f"{name} is a declaration of the provider and cannot change")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', '?')!r}>"

    @property
    def auth_kind(self) -> AuthKind:
        """``oauth2`` for an OAuth2Spec, ``credentials`` for a non-empty form, ``none`` otherwise."""
        if isinstance(self.auth, OAuth2Spec):
            return "oauth2"
        return "credentials" if self.auth else "none"

    def implements(self, operation: str) -> bool:
        """Whether this provider overrides an optional operation (``delete``, ``fetch_metrics``…)."""
        return getattr(type(self), operation, None) is not getattr(Provider, operation, None)

    def check_draft(self, draft: PostDraft) -> list[Issue]:
        """Problems with ``draft`` under platform rules that ``limits`` cannot express; none by default.

        ``validate_draft`` adds these to the limits' own issues, so they are reported when a post
        is scheduled and checked again right before sending (Telegram: a caption is capped at
        1,024 characters although a message may hold 4,096). Pure and synchronous: no requests.
        """
        return []

    async def publish(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
        """Publish ``request`` (and its thread parts, in order) on the account in ``ctx``.

        Called once per attempt, after the draft passed validation against ``limits`` and
        ``settings``. Return a PublishResult on success; raise the SDK's typed errors otherwise
        (see ``providers.errors``). Raise ``Unconfirmed`` when the request may have reached the
        platform but no answer came back. A provider with ``capabilities.processing`` may return
        ``Processing`` when the platform needs time (a video container): see ``poll``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement publish")

    async def poll(self, ctx: ProviderContext, request: PublishRequest, handle: Mapping[str, Any]) -> PublishResult | Processing:
        """Check on a publish that answered ``Processing``; ``handle`` is the one it carried.

        Return the ``PublishResult`` once the post is live (publishing a finished container is
        part of this step), another ``Processing`` while the platform still works, or raise:
        ``Rejected`` when the platform gave up on the media before anything was published,
        ``Unconfirmed`` when a publishing request's answer was lost. Called on any worker, after
        ``check_after``, possibly after a restart: keep everything needed in ``handle``.
        """
        raise NotSupported(self.id, "processing")

    async def setting_choices(self, ctx: ProviderContext, setting: str) -> list[SettingChoice]:
        """The values ``setting`` (declared with ``choices_from_account``) can take on this account.

        Read from the platform (Pinterest boards, Slack channels, TikTok's privacy levels for this
        creator); the gateway caches them briefly and offers them per account.
        """
        raise NotSupported(self.id, "setting choices")

    async def delete(self, ctx: ProviderContext, platform_post_id: str) -> None:
        """Delete a published post. Deleting a post that is already gone succeeds."""
        raise NotSupported(self.id, "delete")

    async def fetch_metrics(self, ctx: ProviderContext, platform_post_ids: Sequence[str]) -> list[MetricSnapshot]:
        """Current figures of published posts, one snapshot per id the platform still knows.

        The gateway passes at most ``metrics.batch_size`` ids, all of one account: read them in
        as few requests as the platform allows. A figure the answer does not carry stays None.
        """
        raise NotSupported(self.id, "metrics")

    async def fetch_account_metrics(self, ctx: ProviderContext) -> AccountMetricSnapshot:
        """The account's totals now (followers, following, posts) for the figures in ``metrics.account``."""
        raise NotSupported(self.id, "account metrics")

    async def reconcile(self, ctx: ProviderContext, request: PublishRequest) -> PublishResult | None:
        """After ``Unconfirmed`` or a crash mid-call: the post if the platform has it, else None."""
        raise NotSupported(self.id, "reconcile")

    async def connect(self, ctx: ProviderContext, credentials: dict[str, str]) -> AccountProfile:
        """Check ``credentials`` with the platform and say whose account they are.

        For credentials-form providers ``credentials`` are the submitted form values; for OAuth
        providers they are ``TokenSet.to_credentials()`` of a freshly exchanged token. Raise
        ``AuthExpired`` (or ``Rejected``) when the platform refuses them.
        """
        raise NotSupported(self.id, "connect")

    async def exchange_code(
        self, ctx: ProviderContext, *, code: str, redirect_uri: str, code_verifier: str | None, client_id: str, client_secret: str
    ) -> TokenSet:
        """Trade an OAuth authorization code for tokens (the gateway then calls ``connect``)."""
        raise NotSupported(self.id, "OAuth code exchange")

    async def refresh_token(self, ctx: ProviderContext, *, client_id: str, client_secret: str) -> TokenSet:
        """New tokens from the refresh token in ``ctx.credentials``; ``AuthExpired`` when refused."""
        raise NotSupported(self.id, "token refresh")
