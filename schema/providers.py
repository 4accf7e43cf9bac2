"""Providers as a frontend needs them: capabilities, limits with their unit, auth and settings forms."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from gateway.accounts import callback_url
from gateway.runtime import Runtime
from providers import CredentialField, OAuth2Spec, Provider, SettingField
from schema.context import Info
from schema.metrics import ProviderMetricsType


@strawberry.type
class ProviderCapabilities:
    publish: bool
    threads: bool
    delete: bool
    metrics: bool
    reconcile: bool
    ads: bool
    first_comment: bool
    native_scheduling: bool
    processing: bool = strawberry.field(description="Media may take minutes: targets wait in PROCESSING while the platform works.")


@strawberry.type
class TextLimitType:
    max_length: int
    unit: str = strawberry.field(description="characters, graphemes, x_weighted, utf8_bytes, emoji_utf8_bytes or utf16_units.")


@strawberry.type
class KindAmount:
    kind: str
    amount: float = strawberry.field(description="Bytes, milliseconds or a count, as the field's name says.")


@strawberry.type
class QuotaType:
    count: int
    period_seconds: int
    scope: str
    description: str
    cost: int = strawberry.field(description="Units one publish uses of `count` (1 for a count of posts).")
    operation: str = strawberry.field(default="publish", description="What the quota meters: publish, or delete (Threads: 100 a day).")


@strawberry.type
class ProviderLimits:
    max_text_length: int | None
    text_unit: str = strawberry.field(description="How text length is counted: characters, graphemes, x_weighted, utf8_bytes, emoji_utf8_bytes (Threads: an emoji counts its UTF-8 bytes), utf16_units (TikTok).")
    text_limits: list[TextLimitType] = strawberry.field(description="Every text cap, the main one first.")
    max_media: int
    media_kinds: list[str]
    max_media_bytes: list[KindAmount]
    max_media_duration_ms: list[KindAmount]
    max_media_per_kind: list[KindAmount]
    media_required: bool
    max_thread_parts: int = strawberry.field(description="Posts in a thread including the first; 1 means no threads.")
    quotas: list[QuotaType]


@strawberry.type
class CredentialFieldType:
    name: str
    label: str
    secret: bool
    required: bool
    kind: str
    pattern: str | None
    choices: list[str]
    default: str | None
    help: str


@strawberry.type
class SettingFieldType:
    name: str
    label: str
    type: str
    choices: list[str]
    default: JSON | None
    required: bool
    help: str
    choices_from_account: bool = strawberry.field(
        description="The values depend on the account (its boards, channels…): ask `Account.settingChoices(setting:)`."
    )


@strawberry.type
class OAuth2Details:
    authorize_url: str
    scopes: list[str]
    pkce: bool
    callback_url: str = strawberry.field(description="The redirect URI to register with the platform for this gateway.")


@strawberry.type
class ProviderAuth:
    kind: str = strawberry.field(description="oauth2, credentials or none.")
    oauth2: OAuth2Details | None
    credential_fields: list[CredentialFieldType]


@strawberry.type(name="Provider", description="A platform socialgate can publish to, as its plugin declares it.")
class ProviderType:
    id: strawberry.ID
    name: str
    description: str
    capabilities: ProviderCapabilities
    limits: ProviderLimits
    auth: ProviderAuth
    setting_fields: list[SettingFieldType]
    configured: bool = strawberry.field(
        description="Whether accounts can be connected: an OAuth provider needs its client id and secret set on the gateway "
        "(SOCIALGATE_OAUTH_<PROVIDER>_CLIENT_ID and _CLIENT_SECRET)."
    )
    metrics: ProviderMetricsType | None = strawberry.field(description="The figures it reads; null when it reads none.")
    approval: str | None = strawberry.field(
        default=None,
        description="What the platform must approve before this provider works for anyone (app review, an allow-list, API "
        "access granted on request); null when the provider does not say.",
    )

    @classmethod
    def from_provider(cls, provider: Provider, runtime: Runtime) -> ProviderType:
        limits = provider.limits
        return cls(
            id=strawberry.ID(provider.id),
            name=provider.name,
            description=provider.description,
            configured=not isinstance(provider.auth, OAuth2Spec) or runtime.settings.oauth_client(provider.id) is not None,
            approval=provider.approval or None,
            capabilities=ProviderCapabilities(**provider.capabilities.as_dict()),
            limits=ProviderLimits(
                max_text_length=limits.max_text_length,
                text_unit=limits.text_unit.value,
                text_limits=[TextLimitType(max_length=t.max_length, unit=t.unit.value) for t in limits.text_limits],
                max_media=limits.max_media,
                media_kinds=sorted(limits.media_kinds),
                max_media_bytes=_amounts(limits.max_media_bytes),
                max_media_duration_ms=_amounts(limits.max_media_duration_ms),
                max_media_per_kind=_amounts(limits.max_media_per_kind),
                media_required=limits.media_required,
                max_thread_parts=limits.max_thread_parts,
                quotas=[QuotaType(count=q.count, period_seconds=q.period_seconds, scope=q.scope, description=q.description, cost=q.cost, operation=q.operation) for q in limits.quotas],
            ),
            auth=_auth(provider, runtime),
            setting_fields=[_setting(s) for s in provider.settings],
            metrics=ProviderMetricsType.of(provider.metrics),
        )


def _amounts(values: object) -> list[KindAmount]:
    return [KindAmount(kind=kind, amount=amount) for kind, amount in sorted(dict(values).items())]  # type: ignore[call-overload]


def _auth(provider: Provider, runtime: Runtime) -> ProviderAuth:
    if isinstance(provider.auth, OAuth2Spec):
        spec = provider.auth
        return ProviderAuth(
            kind="oauth2",
            oauth2=OAuth2Details(
                authorize_url=spec.authorize_url, scopes=list(spec.scopes), pkce=spec.pkce, callback_url=callback_url(runtime.settings.base_url, provider.id)
            ),
            credential_fields=[],
        )
    return ProviderAuth(kind=provider.auth_kind, oauth2=None, credential_fields=[_credential(f) for f in provider.auth])


def _credential(field: CredentialField) -> CredentialFieldType:
    return CredentialFieldType(
        name=field.name,
        label=field.label,
        secret=field.secret,
        required=field.required,
        kind=field.kind,
        pattern=field.pattern,
        choices=list(field.choices),
        default=field.default,
        help=field.help,
    )


def _setting(field: SettingField) -> SettingFieldType:
    return SettingFieldType(
        name=field.name,
        label=field.label,
        type=field.type,
        choices=list(field.choices),
        default=field.default,
        required=field.required,
        help=field.help,
        choices_from_account=field.choices_from_account,
    )


@strawberry.type
class ProviderQuery:
    @strawberry.field(description="Every enabled provider, by id.")
    def providers(self, info: Info) -> list[ProviderType] | None:
        info.context.require("providers:read")
        runtime = info.context.runtime
        return [ProviderType.from_provider(runtime.plugins.providers[key], runtime) for key in sorted(runtime.plugins.providers)]

    @strawberry.field(description="One provider, or null when none has that id.")
    def provider(self, info: Info, id: strawberry.ID) -> ProviderType | None:
        info.context.require("providers:read")
        provider = info.context.runtime.plugins.get(str(id))
        return ProviderType.from_provider(provider, info.context.runtime) if provider else None
