"""Checking drafts, credentials and declarations against a provider, reporting every problem at once.

Issue codes are stable UPPER_SNAKE words clients may branch on; messages are for people and say
the numbers (length in the provider's own unit, and the limit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from providers.calls import PublishRequest, PublishResult
from providers.context import ProviderContext
from providers.declarations import MEDIA_KINDS, SETTING_TYPES, CredentialField, Limits, OAuth2Spec
from providers.errors import Rejected
from providers.processing import Processing
from providers.provider import Provider
from providers.text import TextUnit, measure

PROVIDER_ID = re.compile(r"[a-z][a-z0-9_-]{0,62}")  # one letter is enough: X's id is "x"


@dataclass(frozen=True)
class Issue:
    """One problem: where (``field`` path, e.g. ``("media", "2")``), a stable ``code``, a ``message``."""

    field: tuple[str, ...]
    code: str
    message: str


@dataclass(frozen=True)
class DraftMedia:
    """What validation needs to know about an attachment (no bytes)."""

    kind: str
    mime_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class PostDraft:
    """A post as one target would publish it. ``thread`` holds the parts AFTER the first post."""

    text: str
    media: tuple[DraftMedia, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    thread: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def _text_issues(provider: Provider, text: str, where: tuple[str, ...], what: str) -> list[Issue]:
    issues = []
    for limit in provider.limits.text_limits:
        length = measure(text, limit.unit)
        if length > limit.max_length:
            issues.append(
                Issue(
                    where,
                    "TEXT_TOO_LONG",
                    f"{what} is {length} {limit.unit.label}; {provider.name} allows at most "
                    f"{limit.max_length} {limit.unit.label}.",
                )
            )
    return issues


def _media_issues(provider: Provider, media: tuple[DraftMedia, ...]) -> list[Issue]:
    limits = provider.limits
    issues = []
    if limits.media_required and not media:
        issues.append(Issue(("media",), "MEDIA_REQUIRED", f"{provider.name} needs at least one media attachment."))
    if media and limits.max_media == 0:
        issues.append(Issue(("media",), "TOO_MANY_MEDIA", f"{provider.name} does not take media attachments."))
    elif len(media) > limits.max_media:
        issues.append(
            Issue(("media",), "TOO_MANY_MEDIA", f"{len(media)} attachments; {provider.name} allows at most {limits.max_media}.")
        )
    per_kind: dict[str, int] = {}
    for index, item in enumerate(media):
        where = ("media", str(index))
        per_kind[item.kind] = per_kind.get(item.kind, 0) + 1
        if item.kind not in limits.media_kinds:
            accepted = ", ".join(sorted(limits.media_kinds)) or "none"
            issues.append(
                Issue(where, "MEDIA_KIND_NOT_SUPPORTED", f"{provider.name} does not take {item.kind} attachments (accepts: {accepted}).")
            )
            continue
        max_bytes = limits.max_media_bytes.get(item.kind)
        if max_bytes is not None and item.size_bytes > max_bytes:
            issues.append(
                Issue(where, "MEDIA_TOO_LARGE", f"This {item.kind} is {_size(item.size_bytes)}; {provider.name} allows at most {_size(max_bytes)}.")
            )
        max_duration = limits.max_media_duration_ms.get(item.kind)
        if max_duration is not None and item.duration_ms is not None and item.duration_ms > max_duration:
            issues.append(
                Issue(
                    where,
                    "MEDIA_TOO_LONG",
                    f"This {item.kind} lasts {item.duration_ms / 1000:g} s; {provider.name} allows at most {max_duration / 1000:g} s.",
                )
            )
    for kind, count in sorted(per_kind.items()):
        cap = limits.max_media_per_kind.get(kind)
        if cap is not None and count > cap:
            issues.append(Issue(("media",), "TOO_MANY_MEDIA", f"{count} {kind} attachments; {provider.name} allows at most {cap} per post."))
    return issues


def _form_issues(section: str, word: str, fields: tuple[Any, ...], values: Mapping[str, Any], owner: str) -> list[Issue]:
    """Unknown, missing and invalid values of a form: per-post settings or a credentials form.

    ``word`` names a field in codes and messages (``setting`` → ``SETTING_REQUIRED``); an empty
    string counts as missing, and a field with a default is never missing.
    """
    prefix = word.upper()
    known = {f.name for f in fields}
    issues = [
        Issue((section, name), f"UNKNOWN_{prefix}", f"{owner} has no {word} {name!r}.") for name in values if name not in known
    ]
    for form_field in fields:
        value = values.get(form_field.name)
        if value is None or value == "":
            if form_field.required and form_field.default is None:
                issues.append(Issue((section, form_field.name), f"{prefix}_REQUIRED", f"{form_field.label} is required for {owner}."))
            continue
        problem = form_field.problem_with(value)
        if problem:
            issues.append(Issue((section, form_field.name), f"{prefix}_INVALID", f"{form_field.label} {problem}."))
    return issues


def validate_draft(provider: Provider, draft: PostDraft) -> list[Issue]:
    """Every way ``draft`` breaks ``provider``'s limits and settings (empty when it can be sent)."""
    issues: list[Issue] = []
    if not provider.capabilities.publish:  # an ads-only platform (Meta ads, Apple Search Ads)
        return [Issue(("targets",), "PUBLISH_NOT_SUPPORTED", f"{provider.name} runs ads; it does not publish posts.")]
    if not draft.text.strip() and not draft.media:
        issues.append(Issue(("text",), "EMPTY_POST", "A post needs text or at least one media attachment."))
    issues += _text_issues(provider, draft.text, ("text",), "The text")
    issues += _media_issues(provider, draft.media)
    if draft.thread:
        parts = 1 + len(draft.thread)
        if provider.limits.max_thread_parts <= 1:
            issues.append(Issue(("thread",), "THREADS_NOT_SUPPORTED", f"{provider.name} does not publish threads."))
        elif parts > provider.limits.max_thread_parts:
            issues.append(
                Issue(("thread",), "THREAD_TOO_LONG", f"The thread has {parts} posts; {provider.name} allows at most {provider.limits.max_thread_parts}.")
            )
        for index, part in enumerate(draft.thread):
            where = ("thread", str(index))
            if not part.strip():
                issues.append(Issue(where, "EMPTY_POST", f"Thread part {index + 2} has no text."))
            issues += _text_issues(provider, part, where, f"Thread part {index + 2}")
    issues += _form_issues("settings", "setting", provider.settings, draft.settings, provider.name)
    issues += provider.check_draft(draft)
    return issues


def validate_credentials(provider: Provider, values: Mapping[str, str]) -> list[Issue]:
    """Every problem with a submitted credentials form (before anything is sent to the platform)."""
    if provider.auth_kind != "credentials":
        how = "through OAuth" if provider.auth_kind == "oauth2" else "without credentials"
        return [Issue(("credentials",), "CREDENTIALS_NOT_ACCEPTED", f"{provider.name} accounts connect {how}.")] if values else []
    fields: tuple[CredentialField, ...] = provider.auth  # type: ignore[assignment]
    return _form_issues("credentials", "credential", fields, values, provider.name)


def draft_from_request(request: PublishRequest) -> PostDraft:
    """The draft a publish request amounts to (to validate it once more right before sending)."""

    def describe(media: Any) -> DraftMedia:
        return DraftMedia(media.kind, media.mime_type, media.size_bytes, media.width, media.height, media.duration_ms)

    return PostDraft(
        text=request.text,
        media=tuple(describe(m) for m in request.media),
        settings=request.settings,
        thread=tuple(part.text for part in request.thread),
    )


async def publish_checked(provider: Provider, ctx: ProviderContext, request: PublishRequest) -> PublishResult | Processing:
    """Validate ``request`` against the provider, then publish it; nothing is sent when it is invalid.

    The engine publishes through this, so a draft that became invalid after scheduling (edited
    media, a changed setting) fails as ``Rejected("VALIDATION_FAILED")`` without a request.
    """
    issues = validate_draft(provider, draft_from_request(request))
    if issues:
        raise Rejected("VALIDATION_FAILED", " ".join(issue.message for issue in issues), raw=issues)
    return await provider.publish(ctx, request)


def _declaration_issues(provider: Provider) -> list[Issue]:
    issues: list[Issue] = []

    def bad(field_name: str, code: str, message: str) -> None:
        issues.append(Issue((field_name,), code, message))

    provider_id = getattr(provider, "id", None)
    if not isinstance(provider_id, str) or not PROVIDER_ID.fullmatch(provider_id):
        bad("id", "INVALID_ID", f"id {provider_id!r} must be 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter")
    if not isinstance(getattr(provider, "name", None), str) or not provider.name.strip():
        bad("name", "INVALID_NAME", "name must be a non-empty string")
    return issues


def _limits_issues(provider: Provider) -> list[Issue]:
    limits: Limits = provider.limits
    issues: list[Issue] = []

    def bad(code: str, message: str) -> None:
        issues.append(Issue(("limits",), code, message))

    if limits.max_text_length is not None and limits.max_text_length <= 0:
        bad("INVALID_LIMIT", "max_text_length must be positive or None")
    if not isinstance(limits.text_unit, TextUnit):
        bad("INVALID_LIMIT", "text_unit must be a TextUnit")
    unknown = limits.media_kinds - MEDIA_KINDS
    if unknown:
        bad("INVALID_LIMIT", f"unknown media kinds {sorted(unknown)}; use {sorted(MEDIA_KINDS)}")
    if limits.max_media < 0:
        bad("INVALID_LIMIT", "max_media must not be negative")
    if (limits.max_media == 0) != (not limits.media_kinds):
        bad("INCONSISTENT_LIMITS", "max_media and media_kinds must both be empty or both allow media")
    if limits.media_required and limits.max_media == 0:
        bad("INCONSISTENT_LIMITS", "media_required needs max_media of at least 1")
    for name in ("max_media_bytes", "max_media_duration_ms", "max_media_per_kind"):
        mapping = getattr(limits, name)
        stray = set(mapping) - limits.media_kinds
        if stray:
            bad("INCONSISTENT_LIMITS", f"{name} names kinds not in media_kinds: {sorted(stray)}")
        if any(not isinstance(v, int) or v <= 0 for v in mapping.values()):
            bad("INVALID_LIMIT", f"{name} values must be positive integers")
    if limits.max_thread_parts < 1:
        bad("INVALID_LIMIT", "max_thread_parts must be at least 1")

    if provider.capabilities.threads != (limits.max_thread_parts > 1):
        bad("INCONSISTENT_LIMITS", "capabilities.threads must be true exactly when max_thread_parts > 1")
    for quota in limits.quotas:
        if quota.count <= 0 or quota.period_seconds <= 0 or quota.cost <= 0 or quota.scope not in ("account", "app"):
            bad("INVALID_LIMIT", "quotas need a positive count, period and cost, and a scope of 'account' or 'app'")
        elif quota.cost > quota.count:
            bad("INVALID_LIMIT", f"a publish costs {quota.cost} units, more than the quota's whole {quota.count}")
    return issues


def _auth_issues(provider: Provider) -> list[Issue]:
    issues: list[Issue] = []
    auth = provider.auth
    if isinstance(auth, OAuth2Spec):
        if not auth.authorize_url.startswith("https://") or not auth.token_url.startswith("https://"):
            issues.append(Issue(("auth",), "INVALID_AUTH", "OAuth2 URLs must be https"))
        if not provider.implements("exchange_code"):
            issues.append(Issue(("auth",), "MISSING_OPERATION", "an OAuth2 provider must implement exchange_code"))
        if auth.refreshable and not provider.implements("refresh_token"):
            issues.append(Issue(("auth",), "MISSING_OPERATION", "a refreshable OAuth2 provider must implement refresh_token"))
        if not provider.implements("connect"):
            issues.append(Issue(("auth",), "MISSING_OPERATION", "an OAuth2 provider must implement connect to name the account"))
    elif isinstance(auth, tuple):
        if not all(isinstance(f, CredentialField) for f in auth):
            issues.append(Issue(("auth",), "INVALID_AUTH", "auth must be an OAuth2Spec or a tuple of CredentialField"))
            return issues
        names = [f.name for f in auth]
        if len(set(names)) != len(names):
            issues.append(Issue(("auth",), "DUPLICATE_FIELD", f"credential field names repeat: {names}"))
        for credential in auth:
            if credential.kind == "choice" and not credential.choices:
                issues.append(Issue(("auth", credential.name), "INVALID_AUTH", "a choice field needs choices"))
            if credential.default is not None and credential.problem_with(credential.default):
                issues.append(Issue(("auth", credential.name), "INVALID_AUTH", "the default is not an acceptable value"))
            if credential.pattern is not None:
                try:
                    re.compile(credential.pattern)
                except re.error as exc:
                    issues.append(Issue(("auth", credential.name), "INVALID_AUTH", f"pattern does not compile: {exc}"))
        if auth and not provider.implements("connect"):
            issues.append(Issue(("auth",), "MISSING_OPERATION", "a credentials provider must implement connect"))
    else:
        issues.append(Issue(("auth",), "INVALID_AUTH", "auth must be an OAuth2Spec or a tuple of CredentialField"))
    return issues


def _settings_declaration_issues(provider: Provider) -> list[Issue]:
    issues: list[Issue] = []
    names = [s.name for s in provider.settings]
    if len(set(names)) != len(names):
        issues.append(Issue(("settings",), "DUPLICATE_FIELD", f"setting names repeat: {names}"))
    for setting in provider.settings:
        where = ("settings", setting.name)
        if setting.type not in SETTING_TYPES:
            issues.append(Issue(where, "INVALID_SETTING", f"type must be one of {SETTING_TYPES}"))
        elif setting.type == "choice" and not setting.choices and not setting.choices_from_account:
            issues.append(Issue(where, "INVALID_SETTING", "a choice setting needs choices"))
        elif setting.default is not None and setting.problem_with(setting.default):
            issues.append(Issue(where, "INVALID_SETTING", f"default {setting.default!r} {setting.problem_with(setting.default)}"))
    return issues


def check_declarations(provider: Provider) -> list[Issue]:
    """Every inconsistency in a provider's declarations; the gateway refuses a provider with any.

    Checks the id and name, that limits are coherent (media kinds known, per-kind caps only for
    accepted kinds, threads capability matching the thread length), that auth and settings fields
    are well formed, and that every capability promised is backed by an implemented operation.
    """
    if not isinstance(provider, Provider):
        return [Issue((), "NOT_A_PROVIDER", f"{provider!r} is not a providers.Provider")]
    issues = _declaration_issues(provider)
    issues += _limits_issues(provider)
    issues += _auth_issues(provider)
    issues += _settings_declaration_issues(provider)
    capabilities = provider.capabilities
    # Metrics may be only the account's (Google Business Profile has no per-post figures): then
    # fetch_account_metrics backs the capability, and _metrics_issues checks that.
    account_only = provider.metrics is not None and provider.metrics.account and not provider.metrics.post
    for capability, operation in (("delete", "delete"), ("metrics", "fetch_metrics"), ("reconcile", "reconcile"), ("processing", "poll")):
        if capability == "metrics" and account_only and not provider.implements(operation):
            continue
        if getattr(capabilities, capability) and not provider.implements(operation):
            issues.append(Issue(("capabilities", capability), "MISSING_OPERATION", f"capabilities.{capability} needs {operation} implemented"))
        if provider.implements(operation) and not getattr(capabilities, capability):
            issues.append(
                Issue(("capabilities", capability), "UNDECLARED_OPERATION", f"{operation} is implemented but capabilities.{capability} is false")
            )
    issues += _metrics_issues(provider)
    issues += _setting_choices_issues(provider)
    if capabilities.ads != (provider.ads is not None):
        issues.append(Issue(("capabilities", "ads"), "INCONSISTENT_CAPABILITIES", "capabilities.ads must be true exactly when ads is set"))
    if not capabilities.publish and not capabilities.ads:
        issues.append(Issue(("capabilities", "publish"), "INCONSISTENT_CAPABILITIES", "a provider publishes, runs ads, or both"))
    return issues


def _setting_choices_issues(provider: Provider) -> list[Issue]:
    """Settings whose choices come from the account exist exactly when ``setting_choices`` is implemented."""
    dynamic = [s.name for s in provider.settings if s.choices_from_account]
    if dynamic and not provider.implements("setting_choices"):
        return [Issue(("settings", dynamic[0]), "MISSING_OPERATION", "choices_from_account needs setting_choices implemented")]
    if provider.implements("setting_choices") and not dynamic:
        return [Issue(("settings",), "UNDECLARED_OPERATION", "setting_choices is implemented but no setting has choices_from_account")]
    return []


def _metrics_issues(provider: Provider) -> list[Issue]:
    """``metrics`` is declared exactly with ``capabilities.metrics``, sound, and backed by operations."""
    spec = provider.metrics
    if spec is None:
        if provider.capabilities.metrics:
            return [Issue(("metrics",), "MISSING_METRICS_SPEC", "capabilities.metrics needs a MetricsSpec saying which figures are read")]
        return []
    issues = [Issue(("metrics", name), "INVALID_METRICS_SPEC", message) for name, message in spec.problems()]
    if not provider.capabilities.metrics:
        issues.append(Issue(("metrics",), "UNDECLARED_OPERATION", "a MetricsSpec is declared but capabilities.metrics is false"))
    if spec.account and not provider.implements("fetch_account_metrics"):
        issues.append(Issue(("metrics", "account"), "MISSING_OPERATION", "account figures need fetch_account_metrics implemented"))
    if provider.implements("fetch_account_metrics") and not spec.account:
        issues.append(Issue(("metrics", "account"), "UNDECLARED_OPERATION", "fetch_account_metrics is implemented but metrics.account is empty"))
    if not spec.post and provider.implements("fetch_metrics"):
        issues.append(Issue(("metrics", "post"), "UNDECLARED_OPERATION", "fetch_metrics is implemented but metrics.post is empty"))
    return issues
